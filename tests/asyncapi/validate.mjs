// Validate an AsyncAPI document with the official parser (@asyncapi/parser).
//
// Usage: node validate.mjs FILE   ("-" reads standard input)
// Exit 0: valid (warnings are printed); 1: invalid (every error printed with its path);
// 2: usage or I/O problem. The Python tests run it on what `microdcs asyncapi` generates.
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const SEVERITY = ["error", "warning", "info", "hint"];

async function main() {
  const file = process.argv[2];
  if (!file) {
    console.error("usage: node validate.mjs FILE|-");
    return 2;
  }
  let text;
  try {
    text = readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (error) {
    console.error(`cannot read ${file}: ${error.message}`);
    return 2;
  }
  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(text);
  let errors = 0;
  for (const d of diagnostics) {
    const level = SEVERITY[d.severity] ?? String(d.severity);
    if (d.severity === 0) errors += 1;
    console.log(`${level} ${d.code} at ${(d.path || []).join(".") || "/"}: ${d.message}`);
  }
  if (document === undefined || errors > 0) {
    console.log(`invalid: ${errors} error(s)`);
    return 1;
  }
  console.log(`valid: AsyncAPI ${document.version()}, ${document.channels().length} channels, ` +
    `${document.operations().length} operations, ${document.messages().length} messages`);
  return 0;
}

process.exitCode = await main();
