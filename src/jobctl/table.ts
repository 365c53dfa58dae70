/**
 * Aligned text columns for human output. Widths count UTF-16 code units, which is right for the ids,
 * names, numbers and ASCII bars jobctl prints; a status message with wide characters may shift its
 * own row, never the others (it is the last column).
 */

export interface Column<Row> {
  readonly header: string;
  readonly value: (row: Row) => string;
  /** Numbers read best right-aligned. */
  readonly align?: 'left' | 'right';
  /** Longer values are cut with an ellipsis (a status message must not wrap the table). */
  readonly maxWidth?: number;
}

const GAP = '  ';

/** Header and rows as lines; the last column is not padded, so lines carry no trailing spaces. */
export function renderTable<Row>(columns: readonly Column<Row>[], rows: readonly Row[]): string[] {
  const cells = rows.map((row) => columns.map((column) => clip(column.value(row), column.maxWidth)));
  const widths = columns.map((column, index) => Math.max(column.header.length, ...cells.map((line) => (line[index] ?? '').length)));
  const line = (values: readonly string[]): string =>
    values
      .map((value, index) => {
        const width = widths[index] ?? value.length;
        const last = index === values.length - 1;
        if (columns[index]?.align === 'right') return value.padStart(width);
        return last ? value : value.padEnd(width);
      })
      .join(GAP)
      .trimEnd();
  return [line(columns.map((column) => column.header)), ...cells.map(line)];
}

/** `label  value` lines with the labels aligned; rows whose value is undefined are left out. */
export function renderFields(fields: readonly (readonly [string, string | undefined])[]): string[] {
  const present = fields.filter((field): field is readonly [string, string] => field[1] !== undefined);
  const width = Math.max(0, ...present.map(([label]) => label.length));
  return present.map(([label, value]) => `${label.padEnd(width)}${GAP}${value}`.trimEnd());
}

export function clip(text: string, maxWidth: number | undefined): string {
  const flat = text.replace(/\s*\n\s*/g, ' ');
  if (maxWidth === undefined || flat.length <= maxWidth) return flat;
  return `${flat.slice(0, Math.max(0, maxWidth - 1)).trimEnd()}…`;
}
