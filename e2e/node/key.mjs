// Prints a new RSA signing key as a JWK (private parts included), for
// the test identity provider: node key.mjs KID
import { generateKeyPairSync } from "node:crypto";

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = privateKey.export({ format: "jwk" });
console.log(JSON.stringify({ ...jwk, kid: process.argv[2] || "key", use: "sig", alg: "RS256" }));
