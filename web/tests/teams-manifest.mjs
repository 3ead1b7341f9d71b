// Validates an unpacked Teams app package against Microsoft's own manifest
// schema, as shipped offline in the npm package @microsoft/app-manifest,
// and checks its icons are the PNG sizes Teams asks for.
//
//   node teams-manifest.mjs DIR
import Ajv from "ajv-draft-04";
import addFormats from "ajv-formats";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const dir = process.argv[2];
const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
const require = createRequire(import.meta.url);
const root = dirname(require.resolve("@microsoft/app-manifest/package.json"));
const schemaFile = join(root, "build/json-schemas/teams", `v${manifest.manifestVersion}`, "MicrosoftTeams.schema.json");
const schema = JSON.parse(readFileSync(schemaFile, "utf8"));
const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);
const valid = ajv.validate(schema, manifest);
const problems = valid ? [] : ajv.errors.map((e) => `${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`);

function png(file, size, transparent) {
  const bytes = readFileSync(join(dir, file));
  if (bytes.subarray(1, 4).toString() !== "PNG") return problems.push(`${file} is not a PNG`);
  const [w, h, colour] = [bytes.readUInt32BE(16), bytes.readUInt32BE(20), bytes[25]];
  if (w !== size || h !== size) problems.push(`${file} is ${w}x${h}, Teams asks ${size}x${size}`);
  if (transparent && colour !== 6) problems.push(`${file} has no alpha channel`);
}
png(manifest.icons.color, 192, false);
png(manifest.icons.outline, 32, true);

if (problems.length) {
  console.error(`the package does not validate against ${schemaFile}:\n${problems.join("\n")}`);
  process.exit(1);
}
console.log(`valid against ${schemaFile}`);
