// RJSF's ajv8 validator on draft 2020-12 (the schemas' own draft), with the formats the
// server checks, validating the data the console will actually send (pruned).
import { customizeValidator } from "@rjsf/validator-ajv8";
import Ajv2020 from "ajv/dist/2020";
import { prune } from "./schema.js";

function isTimeZone(value) {
  if (value === "UTC") return true;
  try {
    new Intl.DateTimeFormat("en", { timeZone: value });
    return true;
  } catch {
    return false;
  }
}

const base = customizeValidator({
  AjvClass: Ajv2020,
  customFormats: { "time-zone": isTimeZone },
});

/** The validator the forms use: ajv8 on the pruned data. */
export const validator = Object.create(base, {
  validateFormData: {
    value(formData, schema, ...rest) {
      return base.validateFormData(prune(schema, formData), schema, ...rest);
    },
  },
});

const MESSAGES = {
  required: () => "is required",
  format: (e) => `must be a valid ${e.params.format}`,
  type: (e) => `must be ${/^[aeiou]/.test(e.params.type) ? "an" : "a"} ${e.params.type}`,
  minLength: (e) => (e.params.limit === 1 ? "must not be empty" : e.message),
};

/** Friendlier messages, shown under each field. */
export function transformErrors(errors) {
  return errors.map((e) => (MESSAGES[e.name] ? { ...e, message: MESSAGES[e.name](e) } : e));
}
