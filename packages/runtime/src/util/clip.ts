/**
 * `text` cut to at most `max` characters, at a word boundary where there is one, with an
 * ellipsis: how titles and descriptions derived from free text stay within the plan's bounds.
 */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max - 1);
  const space = cut.lastIndexOf(' ');
  return `${(space > max / 2 ? cut.slice(0, space) : cut).trimEnd()}…`;
}
