/**
 * The one define-and-check pattern behind `defineAction` and `defineDistribution`: a spec is checked
 * naming every problem at once (an author fixes a definition in one pass), copied with its defaults
 * filled in (later mutation of the author's object cannot change what was checked), frozen, and branded
 * so that the drop-in loader can tell a definition from any other export.
 */
import { describeValue } from './describe-value.js';

/** What sets one kind of definition apart; one frozen constant per kind. */
export interface DefinitionKind<Brand extends symbol> {
  /** `action`, `distribution`: how error messages name one. */
  readonly noun: string;
  /** The function authors call (`defineAction`), named when a value was not made by it. */
  readonly definer: string;
  /**
   * Registered globally (Symbol.for), so that a definition made through a second copy of the engine
   * (a module package with its own dependency on it) is still recognised; the shape is re-checked anyway.
   */
  readonly brand: Brand;
  /** Every problem of a spec, none when it is valid. */
  readonly problemsOf: (spec: unknown) => string[];
  /** The kind's own error class, so callers can tell a bad definition from other failures. */
  readonly errorOf: (message: string) => Error;
}

export type Branded<Brand extends symbol> = { readonly [K in Brand]: true };

/** The fields of a spec, or undefined when it is not a plain object (an array is not one either). */
export function fieldsOf(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/**
 * The problem of fields a spec does not know, if it has any. Plain-JS authors get no excess-property
 * check, and a misspelt field (`timeout` for `timeoutSeconds`) would otherwise be silently ignored.
 */
export function unknownFieldsProblem(fields: Record<string, unknown>, known: Iterable<string>): string | undefined {
  const expected = [...known];
  const unknown = Object.keys(fields).filter((key) => !expected.includes(key));
  return unknown.length > 0 ? `unknown field(s) ${unknown.join(', ')}; expected ${expected.join(', ')}` : undefined;
}

/**
 * Checks `spec` eagerly (a bad definition fails when its module is imported, naming what is wrong), then
 * freezes `copy()` (the spec's fields with defaults filled in) and brands it.
 */
export function defineChecked<Brand extends symbol, Fields extends object>(
  kind: DefinitionKind<Brand>,
  spec: unknown,
  copy: () => Fields,
): Readonly<Fields & Branded<Brand>> {
  const problems = kind.problemsOf(spec);
  if (problems.length > 0) {
    const name = fieldsOf(spec)?.name;
    const label = typeof name === 'string' ? `${kind.noun} ${JSON.stringify(name)}` : kind.noun;
    throw kind.errorOf(`invalid ${label} definition: ${problems.join('; ')}`);
  }
  // A computed key of a generic symbol type widens to an index signature: the cast restores the brand.
  return Object.freeze({ ...copy(), [kind.brand]: true } as Fields & Branded<Brand>);
}

/** Why a value is not a usable definition of this kind (empty when it is one), for the loader's message. */
export function definitionProblems<Brand extends symbol>(kind: DefinitionKind<Brand>, value: unknown): string[] {
  if (typeof value !== 'object' || value === null || (value as Record<PropertyKey, unknown>)[kind.brand] !== true) {
    return [`not made by ${kind.definer}, got ${describeValue(value)}`];
  }
  // The brand alone proves nothing about the shape (any object can carry a global symbol): check the rest.
  const { [kind.brand]: _brand, ...spec } = value as Record<PropertyKey, unknown>;
  return kind.problemsOf(spec);
}

/** True for values made by the kind's define function (from any copy of the engine) that still hold a valid spec. */
export function isDefinition<Brand extends symbol>(kind: DefinitionKind<Brand>, value: unknown): value is Branded<Brand> {
  return definitionProblems(kind, value).length === 0;
}
