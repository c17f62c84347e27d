// Query keys of the widget editor's server state.
export const widgetKey = (tenant: string, id: string) => ['widget', tenant, id] as const;
export const originsKey = (tenant: string, id: string) => ['origins', tenant, id] as const;
export const versionsKey = (tenant: string, id: string) => ['versions', tenant, id] as const;
