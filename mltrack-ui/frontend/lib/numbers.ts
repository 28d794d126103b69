// Numbers as people read them: a few significant digits on screen, the exact value on hover.

const SIGNIFICANT = 4;

/** `value` to `digits` significant digits, without trailing zeros; integers stay whole. */
export function formatSig(value: number | null | undefined, digits = SIGNIFICANT): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "−∞";
  if (Number.isInteger(value) && Math.abs(value) < 1e9) return value.toLocaleString("en-US");
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e9)) {
    // 1.235e-5, not 1.2350e-5
    const [mantissa, exponent] = value.toExponential(digits - 1).split("e");
    return `${String(Number(mantissa))}e${exponent}`;
  }
  return String(Number(value.toPrecision(digits)));
}

/** The value as it was stored, for the title attribute (hover). */
export function exactNumber(value: number | null | undefined): string {
  if (value === null || value === undefined) return "";
  return String(value);
}

/** A param or tag value that happens to be numeric is shortened too; other text is left alone. */
export function formatValue(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return formatSig(value);
  const trimmed = value.trim();
  if (trimmed !== "" && /^[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$/.test(trimmed) && trimmed.length > 8) {
    return formatSig(Number(trimmed));
  }
  return value;
}
