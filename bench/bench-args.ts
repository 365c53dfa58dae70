/** The options every benchmark takes: --json, --seconds N, --only a,b. Bad values are refused by name. */
export interface BenchArgs {
  readonly json: boolean;
  readonly seconds: number;
  readonly only: ReadonlySet<string> | undefined;
  readonly has: (flag: string) => boolean;
}

export function parseBenchArgs(argv: readonly string[], defaultSeconds: number): BenchArgs {
  const valueOf = (flag: string): string | undefined => {
    const index = argv.indexOf(flag);
    if (index === -1) return undefined;
    const value = argv[index + 1];
    if (value === undefined || value.startsWith('--')) throw new Error(`${flag} needs a value`);
    return value;
  };
  const secondsText = valueOf('--seconds');
  const seconds = secondsText === undefined ? defaultSeconds : Number(secondsText);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`--seconds needs a positive number, got ${String(secondsText)}`);
  const onlyText = valueOf('--only');
  return {
    json: argv.includes('--json'),
    seconds,
    only: onlyText === undefined ? undefined : new Set(onlyText.split(',')),
    has: (flag) => argv.includes(flag),
  };
}
