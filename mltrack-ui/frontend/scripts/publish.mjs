// Copies the static export (out/) into the Python package, where `mltrack ui` serves it from.
import { cpSync, existsSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const exported = join(here, "..", "out");
const target = join(here, "..", "..", "src", "mltrack_ui", "static");

if (!existsSync(join(exported, "index.html"))) {
  console.error(`no static export in ${exported}: did next build run?`);
  process.exit(1);
}
rmSync(target, { recursive: true, force: true });
cpSync(exported, target, { recursive: true });
console.log(`front end copied to ${target}`);
