// The JSON-Schema form: react-jsonschema-form with calflow's widgets and validator.
import Form from "@rjsf/core";
import { useMemo } from "react";
import { FetchContext } from "./context.js";
import { prune, uiSchemaFor } from "./schema.js";
import { transformErrors, validator } from "./validator.js";
import { FetcherWidget, SwitchWidget } from "./widgets.jsx";

const WIDGETS = { fetcher: FetcherWidget, CheckboxWidget: SwitchWidget };
const DEFAULTS_BEHAVIOR = { emptyObjectFields: "populateRequiredDefaults" };

/** `onSubmit` gets the data to send: pruned to the schema, numbers as numbers. */
export function SchemaForm({
  schema,
  uiSchema,
  formData,
  onChange,
  onSubmit,
  extraErrors,
  fetchContext,
  submitLabel = "Submit",
  busy = false,
  idPrefix = "root",
  children,
}) {
  const ui = useMemo(
    () => ({
      ...uiSchemaFor(schema, uiSchema || {}),
      "ui:submitButtonOptions": {
        submitText: busy ? "Working…" : submitLabel,
        props: { disabled: busy, className: "btn btn-primary" },
      },
    }),
    [schema, uiSchema, submitLabel, busy],
  );
  const ctx = useMemo(
    () => ({ app: null, integration: null, ...(fetchContext || {}), formData: formData || {} }),
    [fetchContext, formData],
  );
  return (
    <FetchContext.Provider value={ctx}>
      <Form
        schema={schema}
        uiSchema={ui}
        validator={validator}
        formData={formData}
        idPrefix={idPrefix}
        widgets={WIDGETS}
        extraErrors={extraErrors}
        showErrorList={false}
        noHtml5Validate
        focusOnFirstError
        transformErrors={transformErrors}
        experimental_defaultFormStateBehavior={DEFAULTS_BEHAVIOR}
        onChange={(e) => onChange && onChange(e.formData)}
        onSubmit={(e) => onSubmit(prune(schema, e.formData))}
      >
        {children}
      </Form>
    </FetchContext.Provider>
  );
}
