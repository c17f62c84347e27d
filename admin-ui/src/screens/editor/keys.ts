// Query keys of the widget editor's server state.
export const widgetKey = (tenant: string, id: string) => ['widget', tenant, id] as const;
export const originsKey = (tenant: string, id: string) => ['origins', tenant, id] as const;
export const versionsKey = (tenant: string, id: string) => ['versions', tenant, id] as const;
/** A new tool secret from the save that made it, until the tenant has copied it. */
export const newToolSecretKey = (tenant: string, id: string) => ['new-tool-secret', tenant, id] as const;
