import { createContext } from "react";

/** What fetcher widgets need: the app, the integration, and the whole form's data. */
export const FetchContext = createContext({ app: null, integration: null, formData: {} });
