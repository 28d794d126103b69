import { exactNumber, formatSig } from "@/lib/numbers";

/** A number to a few significant digits; the exact value is the hover title. */
export function Num({ value }: { value: number | null | undefined }) {
  const shown = formatSig(value);
  return (
    <span className="number" title={exactNumber(value)} data-exact={exactNumber(value)}>
      {shown}
    </span>
  );
}
