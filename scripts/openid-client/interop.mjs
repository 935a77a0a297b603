// openid-client (v6) against sesame: code flow + PKCE answered by
// response_mode=form_post, DPoP-bound tokens (with server nonces) for a
// resource server, userinfo with a proof, a refresh. Run by
// scripts/openid-client.sh, which starts sesame and sets ISSUER and
// NODE_DIR (where openid-client is installed).
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const client = await import(
  pathToFileURL(join(process.env.NODE_DIR, 'node_modules/openid-client/build/index.js')).href
);

const issuer = new URL(process.env.ISSUER);
const redirectUri = 'http://rp.test/cb';
const api = 'https://api.example';

const config = await client.discovery(
  issuer,
  'rp',
  undefined,
  client.ClientSecretBasic('rp-secret'),
  { execute: [client.allowInsecureRequests] },
);
const meta = config.serverMetadata();
if (!meta.response_modes_supported?.includes('form_post')) {
  throw new Error(`form_post is not in discovery: ${meta.response_modes_supported}`);
}
const dpop = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));

// A browser, as little as one: follows 303s by hand, keeps cookies.
const jar = new Map();
async function browse(url, init = {}) {
  const headers = { ...(init.headers ?? {}) };
  if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const r = await fetch(url, { ...init, headers, redirect: 'manual' });
  for (const c of r.headers.getSetCookie()) {
    const [pair] = c.split(';');
    const i = pair.indexOf('=');
    jar.set(pair.slice(0, i), pair.slice(i + 1));
  }
  return r;
}
const field = (html, name) => {
  const m = html.match(new RegExp(`name="${name}"[^>]*value="([^"]*)"`));
  if (!m) throw new Error(`no ${name} field in:\n${html}`);
  return m[1].replaceAll('&amp;', '&').replaceAll('&#x2f;', '/').replaceAll('&#x2F;', '/');
};
const unescape = (s) =>
  s.replaceAll('&amp;', '&').replaceAll('&quot;', '"').replaceAll('&#x2f;', '/')
    .replaceAll('&#x2F;', '/').replaceAll('&#x3d;', '=').replaceAll('&#x3D;', '=')
    .replaceAll('&#39;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>');

const verifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const nonce = client.randomNonce();
const authorize = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: 'openid profile email offline_access api.read',
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  response_mode: 'form_post',
  resource: api,
  prompt: 'consent',
  state,
  nonce,
});

let r = await browse(authorize);
if (r.status !== 303) throw new Error(`authorize answered ${r.status}: ${await r.text()}`);
const login = new URL(r.headers.get('location'), issuer);
const page = await (await browse(login)).text();
r = await browse(new URL('login', issuer.href + '/'), {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({
    rid: field(page, 'rid'),
    csrf: field(page, 'csrf'),
    username: 'alice',
    password: 'wonderland',
  }),
});
while (r.status === 303) {
  r = await browse(new URL(r.headers.get('location'), issuer));
}
const html = await r.text();
if (r.status !== 200 || !html.includes('<form')) {
  throw new Error(`expected the form_post page, got ${r.status}:\n${html}`);
}
const csp = r.headers.get('content-security-policy');
const action = unescape(html.match(/<form[^>]*action="([^"]*)"/)[1]);
if (action !== redirectUri) throw new Error(`the form posts to ${action}`);
const posted = new URLSearchParams();
for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) {
  posted.set(m[1], unescape(m[2]));
}

// What the browser would post to the client's redirect URI, handed to
// openid-client as the request its callback received.
const callback = new Request(action, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: posted.toString(),
});
const tokens = await client.authorizationCodeGrant(
  config,
  callback,
  { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce },
  { resource: api },
  { DPoP: dpop },
);
const claims = tokens.claims();
const accessClaims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url'));

// A refresh of the API's grant, bound to the same key.
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, { resource: api }, { DPoP: dpop });

// userinfo takes a token for the issuer: a second grant, without `resource`
// (single sign-on: the session stands, no form to fill in).
const verifier2 = client.randomPKCECodeVerifier();
const state2 = client.randomState();
r = await browse(
  client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile email',
    code_challenge: await client.calculatePKCECodeChallenge(verifier2),
    code_challenge_method: 'S256',
    response_mode: 'form_post',
    state: state2,
  }),
);
while (r.status === 303) r = await browse(new URL(r.headers.get('location'), issuer));
const html2 = await r.text();
const posted2 = new URLSearchParams();
for (const m of html2.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) {
  posted2.set(m[1], unescape(m[2]));
}
const tokens2 = await client.authorizationCodeGrant(
  config,
  new Request(redirectUri, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: posted2.toString(),
  }),
  { pkceCodeVerifier: verifier2, expectedState: state2 },
  undefined,
  { DPoP: dpop },
);
const userinfo = await client.fetchUserInfo(config, tokens2.access_token, tokens2.claims().sub, {
  DPoP: dpop,
});

const result = {
  form_post: { action, fields: [...posted.keys()], csp },
  token_type: tokens.token_type,
  access_token: { aud: accessClaims.aud, scope: accessClaims.scope, cnf: accessClaims.cnf },
  id_token: { iss: claims.iss, sub: claims.sub, aud: claims.aud, nonce: claims.nonce },
  refreshed: { token_type: refreshed.token_type, scope: refreshed.scope },
  sso: { token_type: tokens2.token_type, fields: [...posted2.keys()] },
  userinfo,
};
console.log(JSON.stringify(result, null, 2));
const ok =
  tokens.token_type === 'dpop' &&
  accessClaims.aud === api &&
  accessClaims.cnf?.jkt &&
  refreshed.token_type === 'dpop' &&
  tokens2.token_type === 'dpop' &&
  userinfo.name === 'Alice Martin';
if (!ok) {
  console.error('openid-client interop: FAILED');
  process.exit(1);
}
console.log('openid-client interop: ok');
