// Builds a JavaScript function into a WebAssembly component for aegis build
// (internal/build/js.go), with the componentize-js of the function's own
// node_modules:
//
//   node componentize.mjs SOURCE_DIR MAIN WIT_DIR OUT
//
// run from SOURCE_DIR, so that componentize-js maps it into the engine and
// MAIN's relative imports resolve. WIT_DIR holds the world "function".
import { spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [srcDir, main, witPath, out] = process.argv.slice(2);

// The package's entry point, as its "exports" name it for import: this
// script lives outside SOURCE_DIR, so a bare import would not find it.
async function componentizeEntry() {
  const dir = join(srcDir, "node_modules", "@bytecodealliance", "componentize-js");
  const pkg = JSON.parse(await readFile(join(dir, "package.json"), "utf8"));
  let entry = pkg.exports;
  if (entry && typeof entry === "object" && "." in entry) entry = entry["."];
  if (entry && typeof entry === "object") entry = entry.import ?? entry.default;
  if (typeof entry !== "string") entry = pkg.main ?? "index.js";
  return pathToFileURL(join(dir, entry)).href;
}

try {
  const { componentize } = await import(await componentizeEntry());
  const { component } = await componentize({
    sourcePath: join(srcDir, main),
    witPath,
    worldName: "function",
  });
  await writeFile(out, component);
} catch (err) {
  const message = err instanceof Error ? err.message : String(err);
  console.error(message);
  if (message.startsWith("failed to parse JS source")) {
    // componentize-js counts the syntax errors of MAIN without saying
    // where they are: node's own check does.
    const check = spawnSync(process.execPath, ["--check", main], { cwd: srcDir, encoding: "utf8" });
    // Its stack and version lines are node's, not the function's.
    const where = (check.stderr ?? "").split("\n").filter((l) => !/^\s+at |^Node\.js v/.test(l));
    console.error(where.join("\n").trim());
  }
  process.exit(1);
}
