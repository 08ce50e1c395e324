#!/usr/bin/env node
// Reproducible build of the Flux contracts with solc-js (WebAssembly, from npm).
//
//   node contracts/build.mjs           compile src/**/*.sol, (re)write artifacts/<Name>.json
//   node contracts/build.mjs --check   compile in memory; exit 1 naming every artifact that is
//                                      missing, stale or different from the committed one
//
// Every contract defined under src/ gets one artifact:
//   {"contractName", "sourceName", "abi", "bytecode", "deployedBytecode",
//    "compiler": {"solc", "openzeppelin", "settings"}}
// written with a fixed key order, 2-space indent and a trailing newline. The output depends only
// on the sources, the pinned solc and OpenZeppelin versions and the settings below: the optimizer
// runs a fixed number of times and the metadata hash is left out of the bytecode (bytecodeHash
// "none"), so comments and file paths do not change the bytecode. Imports resolve only into
// contracts/node_modules (no remappings, no network). Compiler warnings fail the build.
// Runs with the system Node (>= 18); `scripts/setup-npm.sh` installs node_modules.

import { createRequire } from "node:module";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = dirname(fileURLToPath(import.meta.url));
const SRC = join(ROOT, "src");
const ARTIFACTS = join(ROOT, "artifacts");
const NODE_MODULES = join(ROOT, "node_modules");

const SETTINGS = {
  evmVersion: "cancun",
  optimizer: { enabled: true, runs: 200 },
  metadata: { bytecodeHash: "none" },
};

function fail(message) {
  console.error(`build.mjs: ${message}`);
  process.exit(2);
}

function pinnedVersion(name) {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const want = pkg.dependencies?.[name];
  const installed = join(NODE_MODULES, name, "package.json");
  if (!existsSync(installed)) fail(`${name} is not installed: run scripts/setup-npm.sh`);
  const have = JSON.parse(readFileSync(installed, "utf8")).version;
  if (have !== want) {
    fail(`node_modules has ${name} ${have}, package.json pins ${want}: run scripts/setup-npm.sh`);
  }
  return have;
}

function solFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...solFiles(path));
    else if (entry.isFile() && entry.name.endsWith(".sol")) out.push(path);
  }
  return out;
}

// Import callback: "@openzeppelin/contracts/..." -> contracts/node_modules/..., nothing else.
function findImport(path) {
  const full = resolve(NODE_MODULES, path);
  if (!full.startsWith(NODE_MODULES + sep) || path.includes("\\")) {
    return { error: `import outside node_modules refused: ${path}` };
  }
  if (!existsSync(full)) return { error: `not found in contracts/node_modules: ${path}` };
  return { contents: readFileSync(full, "utf8") };
}

function compile() {
  const require = createRequire(join(ROOT, "package.json"));
  const solcVersion = pinnedVersion("solc");
  const ozVersion = pinnedVersion("@openzeppelin/contracts");
  const solc = require("solc");

  const files = solFiles(SRC).map((f) => relative(ROOT, f).split(sep).join("/"));
  files.sort();
  if (files.length === 0) fail("no .sol files under contracts/src");
  const sources = {};
  for (const f of files) sources[f] = { content: readFileSync(join(ROOT, f), "utf8") };

  const input = {
    language: "Solidity",
    sources,
    settings: {
      ...SETTINGS,
      outputSelection: {
        "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] },
      },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  const diagnostics = output.errors ?? [];
  for (const d of diagnostics) console.error(d.formattedMessage ?? d.message);
  if (diagnostics.some((d) => d.severity === "error")) fail("compilation failed");
  if (diagnostics.some((d) => d.severity === "warning")) fail("compiler warnings (fix them)");

  const longVersion = solc.version();
  if (!longVersion.startsWith(`${solcVersion}+`)) {
    fail(`solc reports ${longVersion}, package.json pins ${solcVersion}`);
  }

  const artifacts = new Map(); // file name -> text
  for (const sourceName of files) {
    const contracts = output.contracts?.[sourceName] ?? {};
    for (const contractName of Object.keys(contracts).sort()) {
      const c = contracts[contractName];
      const fileName = `${contractName}.json`;
      if (artifacts.has(fileName)) fail(`two contracts named ${contractName}`);
      const artifact = {
        contractName,
        sourceName,
        abi: c.abi,
        bytecode: `0x${c.evm.bytecode.object}`,
        deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
        compiler: { solc: longVersion, openzeppelin: ozVersion, settings: SETTINGS },
      };
      artifacts.set(fileName, `${JSON.stringify(artifact, null, 2)}\n`);
    }
  }
  return artifacts;
}

function committed() {
  if (!existsSync(ARTIFACTS)) return new Set();
  return new Set(readdirSync(ARTIFACTS).filter((f) => f.endsWith(".json")));
}

const check = process.argv.includes("--check");
const unknown = process.argv.slice(2).filter((a) => a !== "--check");
if (unknown.length) fail(`unknown arguments: ${unknown.join(" ")} (usage: build.mjs [--check])`);

const artifacts = compile();
const existing = committed();

if (check) {
  const problems = [];
  for (const [name, text] of artifacts) {
    const path = join(ARTIFACTS, name);
    if (!existing.has(name)) problems.push(`missing: contracts/artifacts/${name}`);
    else if (readFileSync(path, "utf8") !== text) problems.push(`differs: contracts/artifacts/${name}`);
  }
  for (const name of existing) {
    if (!artifacts.has(name)) problems.push(`stale (no such contract): contracts/artifacts/${name}`);
  }
  if (problems.length) {
    for (const p of problems) console.error(p);
    console.error("build.mjs --check: artifacts do not match the sources; run node contracts/build.mjs");
    process.exit(1);
  }
  console.error(`build.mjs --check: ${artifacts.size} artifacts up to date`);
} else {
  mkdirSync(ARTIFACTS, { recursive: true });
  for (const [name, text] of artifacts) {
    const path = join(ARTIFACTS, name);
    if (!existsSync(path) || readFileSync(path, "utf8") !== text) {
      writeFileSync(path, text);
      console.error(`wrote contracts/artifacts/${name}`);
    }
  }
  for (const name of existing) {
    if (!artifacts.has(name)) {
      rmSync(join(ARTIFACTS, name));
      console.error(`removed stale contracts/artifacts/${name}`);
    }
  }
}
