export type PlaceholderValues = {
  buyer_name: string;
  buyer_id: string;
  message: string;
  item_id: string;
  item_title: string;
};

/** Replaces `{name}` for known names; unknown braces stay as written. */
export function fillPlaceholders(
  template: string,
  values: Record<string, string | number | undefined>,
): string {
  return template.replace(/\{([a-z_]+)\}/g, (whole, name: string) => {
    const v = values[name];
    return v === undefined ? whole : String(v);
  });
}
