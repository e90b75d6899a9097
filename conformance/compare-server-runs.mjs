// Compares the suite's server scenarios run direct against the conformance server and through
// idjag-gateway (scripts/conformance.sh).
//
// Usage: node compare-server-runs.mjs OUT_DIR REVISION...
// where OUT_DIR/direct/REVISION and OUT_DIR/gateway/REVISION hold the suite's result
// directories (server-<scenario>-<timestamp>/checks.json).
//
// Exits non-zero when, on any revision, a scenario's checks differ between the two runs (each
// check's id, name and status, as a multiset) other than as gateway-refusals.json documents
// (checks that pass direct and fail through the gateway on purpose), a scenario ran on one
// side only, or a scenario fails direct (a bug of the conformance server), and prints why.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const [out, ...revisions] = process.argv.slice(2);
const { refusals } = JSON.parse(
  readFileSync(join(dirname(fileURLToPath(import.meta.url)), "gateway-refusals.json"), "utf8"),
);
const RESULT_DIR = /^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/;

function scenarios(dir) {
  const found = new Map();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const name = entry.isDirectory() && RESULT_DIR.exec(entry.name)?.[1];
    if (!name) continue;
    if (found.has(name)) throw new Error(`${dir}: ${name} ran twice`);
    found.set(name, JSON.parse(readFileSync(join(dir, entry.name, "checks.json"), "utf8")));
  }
  return found;
}

const outcomes = (checks) => checks.map((c) => `${c.id} ${c.name} ${c.status}`).sort();
const failures = (checks) => checks.filter((c) => c.status === "FAILURE");
// The elements of `a` not in `b`, as multisets.
const minus = (a, b) => {
  const left = [...b];
  return a.filter((x) => {
    const i = left.indexOf(x);
    if (i === -1) return true;
    left.splice(i, 1);
    return false;
  });
};

let problems = 0;
const problem = (text) => {
  problems++;
  console.error(`  ${text}`);
};

for (const revision of revisions) {
  const direct = scenarios(join(out, "direct", revision));
  const gateway = scenarios(join(out, "gateway", revision));
  const names = [...new Set([...direct.keys(), ...gateway.keys()])].sort();
  let directPassed = 0;
  let gatewayPassed = 0;
  let checks = 0;
  let refusedChecks = 0;
  console.log(`== server scenarios, ${revision}`);
  for (const name of names) {
    const d = direct.get(name);
    const g = gateway.get(name);
    if (!d || !g) {
      problem(`${name}: ran ${d ? "direct" : "through the gateway"} only`);
      continue;
    }
    checks += d.length;
    if (failures(d).length === 0) directPassed++;
    else for (const c of failures(d)) problem(`${name}: fails direct: ${c.id}: ${c.errorMessage ?? c.description}`);
    if (failures(g).length === 0) gatewayPassed++;
    const [a, b] = [outcomes(d), outcomes(g)];
    const onlyDirect = minus(a, b);
    const onlyGateway = minus(b, a);
    const refused = refusals.find((r) => r.revision === revision && r.scenario === name);
    const documented = refused
      ? [refused.checks.map((c) => `${c} SUCCESS`).sort(), refused.checks.map((c) => `${c} FAILURE`).sort()]
      : [[], []];
    if (
      onlyDirect.sort().join("\n") !== documented[0].join("\n") ||
      onlyGateway.sort().join("\n") !== documented[1].join("\n")
    ) {
      problem(`${name}: differs: direct [${onlyDirect.join(", ")}], gateway [${onlyGateway.join(", ")}]`);
      for (const c of failures(g)) console.error(`    gateway ${c.id}: ${c.errorMessage ?? c.description}`);
    } else if (refused) {
      refusedChecks += refused.checks.length;
      console.log(`   ${name}: ${refused.checks.length} checks refused through the gateway, as documented`);
    }
  }
  console.log(
    `   ${names.length} scenarios (${checks} checks): ${directPassed} pass direct, ${gatewayPassed} pass through the gateway` +
      (refusedChecks ? ` (${refusedChecks} checks refused on purpose)` : ""),
  );
}
console.log(
  problems === 0
    ? "server scenarios: every scenario passes direct, and through the gateway every check agrees but the documented refusals"
    : `server scenarios: ${problems} problems`,
);
process.exit(problems === 0 ? 0 : 1);
