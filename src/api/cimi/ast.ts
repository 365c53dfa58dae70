/**
 * The syntax tree of a CIMI filter as Nuvla accepts it, e.g.
 *   state=['QUEUED','RUNNING'] and (action='x' or priority<50) and created<'now-7d' and parent-job=null
 * Attributes are paths (`target-resource/href` -> ['target-resource', 'href']).
 */

export type Comparison = '=' | '!=' | '<' | '>' | '<=' | '>=' | '^=';

/** A literal as written: dates stay strings until compiled (`now-7d` needs the clock). */
export type FilterValue = string | number | boolean | null;

export type FilterNode =
  | { readonly kind: 'and' | 'or'; readonly left: FilterNode; readonly right: FilterNode }
  | {
      readonly kind: 'compare';
      readonly attribute: readonly string[];
      readonly op: Comparison;
      /** A list (`state=['A','B']`) means any of them for `=`, none of them for `!=`. */
      readonly value: FilterValue | readonly FilterValue[];
    };

export interface OrderBy {
  readonly attribute: readonly string[];
  readonly direction: 'asc' | 'desc';
}
