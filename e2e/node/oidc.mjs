// An OpenID Connect provider for the tests: npm's oidc-provider (OpenID
// certified), on 127.0.0.1, emitting Entra ID's claims (tid, oid, groups)
// in the ID token as Entra does.
//
//   node oidc.mjs CONFIG.json
//
// CONFIG: { port, clientId, clientSecret, redirectUris: [...],
//           postLogoutRedirectUris: [...], keys: [JWK with private parts…]
//           (the first signs), idTokenTtl (seconds),
//           users: { login: { claims… } } }
//
// Sign-in is oidc-provider's own development login form (any password);
// the account is the login name, its claims those in CONFIG. Consent is
// granted as a first-party app's would be. Prints "ready" when listening.
import Provider from "oidc-provider";
import { readFileSync } from "node:fs";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const issuer = `http://127.0.0.1:${config.port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: config.clientId,
      client_secret: config.clientSecret,
      redirect_uris: config.redirectUris,
      post_logout_redirect_uris: config.postLogoutRedirectUris || [],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
  ],
  jwks: { keys: config.keys },
  pkce: { required: () => true },
  // Claims in the ID token itself, as Entra ID puts them.
  conformIdTokenClaims: false,
  scopes: ["openid", "email", "profile", "offline_access", "entra"],
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name", "preferred_username", "locale"],
    entra: ["tid", "oid", "groups", "hasgroups", "_claim_names", "_claim_sources", "nation", "clearance"],
  },
  ttl: { IdToken: config.idTokenTtl || 3600, AuthorizationCode: 60 },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  findAccount: async (_ctx, id) => {
    const claims = config.users[id];
    if (!claims) return undefined;
    return { accountId: id, claims: async () => ({ sub: claims.sub || id, ...claims }) };
  },
  // A first-party client: the grant is given without asking.
  loadExistingGrant: async (ctx) => {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid email profile entra");
    grant.addOIDCClaims(["tid", "oid", "groups", "nation", "clearance"]);
    await grant.save();
    return grant;
  },
});
provider.proxy = false;
provider.listen(config.port, "127.0.0.1", () => console.log("ready"));
