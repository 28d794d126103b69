import { Fragment } from "react";

/**
 * A long name (`validation/per_class/macro_f1`) that may wrap after its separators, `/ _ . -`,
 * instead of at any letter; the element around it limits the lines and keeps the full name on hover.
 */
export function Breakable({ text }: { text: string }) {
  const parts = text.split(/(?<=[/_.-])/);
  return (
    <>
      {parts.map((part, i) => (
        <Fragment key={i}>
          {i > 0 && <wbr />}
          {part}
        </Fragment>
      ))}
    </>
  );
}
