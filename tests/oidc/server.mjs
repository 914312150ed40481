// A real OpenID provider (oidc-provider) on 127.0.0.1 for tollgate's tests.
//
//   node server.mjs --jwks keys.json [--port 0] [--store store.json]
//                   [--mtls-cert server.crt --mtls-key server.key --mtls-ca ca.crt [--mtls-port 0]]
//       Serves; prints {"issuer":"http://127.0.0.1:PORT","port":PORT} once listening.
//       With --store, issued tokens are kept in that file and survive a
//       restart (as a real IdP's database would); without it they live in
//       memory only. With the --mtls-* files it also serves the same
//       endpoints over HTTPS on a second port that asks for a client
//       certificate signed by --mtls-ca (RFC 8705 mtls_endpoint_aliases, in
//       discovery), adding "mtls_port":N to the line it prints.
//   node server.mjs --generate-keys keys.json [--kid key-1]
//       Writes a private JWK set holding one new RS256 key, then exits.
//
// The clients, secrets and resources are described in README.md.

import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PORT ?? '0' },
    jwks: { type: 'string' },
    'generate-keys': { type: 'string' },
    kid: { type: 'string', default: 'key-1' },
    store: { type: 'string' },
    'mtls-cert': { type: 'string' },
    'mtls-key': { type: 'string' },
    'mtls-ca': { type: 'string' },
    'mtls-port': { type: 'string', default: '0' },
  },
});

if (args['generate-keys']) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: args.kid, alg: 'RS256', use: 'sig' };
  writeFileSync(args['generate-keys'], `${JSON.stringify({ keys: [jwk] }, null, 2)}\n`);
  process.exit(0);
}

if (!args.jwks) {
  console.error('usage: node server.mjs --jwks FILE [--port N] | --generate-keys FILE [--kid KID]');
  process.exit(64);
}

const scope = 'read write';
// Tokens for this resource are RS256 JWTs; tollgate validates them with jwks_uri.
const JWT_RESOURCE = 'https://api.jwt.test';
// Tokens for this resource are opaque; tollgate validates them by introspection.
const OPAQUE_RESOURCE = 'https://api.opaque.test';
const resourceServers = {
  [JWT_RESOURCE]: {
    scope,
    audience: JWT_RESOURCE,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  },
  [OPAQUE_RESOURCE]: { scope, audience: OPAQUE_RESOURCE, accessTokenFormat: 'opaque' },
};

const client = (id, method, grantTypes, metadata = {}) => ({
  client_id: id,
  client_secret: `${id}-secret`,
  token_endpoint_auth_method: method,
  grant_types: grantTypes,
  response_types: [],
  redirect_uris: [],
  ...metadata,
});

// The client certificate of an HTTPS request, as PEM, for RFC 8705
// certificate-bound tokens: the one the TLS handshake of the mutual-TLS
// listener verified, never a header. A plain-HTTP request has none.
const PEM_LINE = /.{1,64}/g;
const peerCertificate = (ctx) => {
  const raw = ctx.socket.getPeerCertificate?.()?.raw;
  if (!raw || !ctx.socket.authorized) return undefined;
  const body = raw.toString('base64').match(PEM_LINE).join('\n');
  return `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
};

// The resource server's own credentials: may introspect and revoke any token.
const RESOURCE_SERVER_CLIENTS = new Set(['tollgate', 'tollgate-post']);
const ownTokenOrResourceServer = (ctx, caller, token) =>
  token.clientId === caller.clientId || RESOURCE_SERVER_CLIENTS.has(caller.clientId);

// oidc-provider's storage interface over one JSON file: every change is
// written through (a temporary file, then a rename), and the file is read
// back at start. Small and slow, which is fine for the few tokens a test or
// the soak issues.
const storePath = args.store;
const stored = new Map(
  storePath && existsSync(storePath) ? Object.entries(JSON.parse(readFileSync(storePath, 'utf8'))) : [],
);
const live = (entry) => entry && (!entry.expiresAt || entry.expiresAt > Date.now());
const save = () => {
  for (const [key, entry] of stored) if (!live(entry)) stored.delete(key);
  writeFileSync(`${storePath}.tmp`, JSON.stringify(Object.fromEntries(stored)));
  renameSync(`${storePath}.tmp`, storePath);
};
class FileAdapter {
  constructor(model) { this.model = model; }
  key(id) { return `${this.model}:${id}`; }
  async upsert(id, payload, expiresIn) {
    stored.set(this.key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
    save();
  }
  async find(id) {
    const entry = stored.get(this.key(id));
    return live(entry) ? entry.payload : undefined;
  }
  async findByUid(uid) {
    for (const [key, entry] of stored) {
      if (key.startsWith(`${this.model}:`) && live(entry) && entry.payload.uid === uid) return entry.payload;
    }
    return undefined;
  }
  async findByUserCode(userCode) {
    for (const [key, entry] of stored) {
      if (key.startsWith(`${this.model}:`) && live(entry) && entry.payload.userCode === userCode) return entry.payload;
    }
    return undefined;
  }
  async consume(id) {
    const entry = stored.get(this.key(id));
    if (entry) { entry.payload.consumed = Math.floor(Date.now() / 1000); save(); }
  }
  async destroy(id) {
    stored.delete(this.key(id));
    save();
  }
  async revokeByGrantId(grantId) {
    for (const [key, entry] of stored) if (entry.payload.grantId === grantId) stored.delete(key);
    save();
  }
}

const mtlsFiles = ['mtls-cert', 'mtls-key', 'mtls-ca'].filter((name) => args[name]);
if (mtlsFiles.length !== 0 && mtlsFiles.length !== 3) {
  console.error('--mtls-cert, --mtls-key and --mtls-ca go together');
  process.exit(64);
}
const mtls = mtlsFiles.length === 3
  ? { cert: readFileSync(args['mtls-cert']), key: readFileSync(args['mtls-key']), ca: readFileSync(args['mtls-ca']) }
  : undefined;

const server = createServer();
server.listen(Number(args.port), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    ...(storePath ? { adapter: FileAdapter } : {}),
    jwks: JSON.parse(readFileSync(args.jwks, 'utf8')),
    clients: [
      client('basic-client', 'client_secret_basic', ['client_credentials']),
      client('post-client', 'client_secret_post', ['client_credentials']),
      client('tollgate', 'client_secret_basic', []),
      client('tollgate-post', 'client_secret_post', []),
      // RFC 9449: every token is bound to the key of the DPoP proof sent
      // with the token request (cnf.jkt); a request without a proof is refused.
      client('dpop-client', 'client_secret_basic', ['client_credentials'], {
        dpop_bound_access_tokens: true,
      }),
      // RFC 8705: every token is bound to the client certificate presented
      // to the mutual-TLS listener (cnf["x5t#S256"]); elsewhere it gets none.
      client('mtls-client', 'client_secret_basic', ['client_credentials'], {
        tls_client_certificate_bound_access_tokens: true,
      }),
    ],
    scopes: ['read', 'write'],
    // DPoP proofs the token endpoint accepts: every asymmetric algorithm a
    // resource server may be configured with (the default is ES256 and EdDSA).
    enabledJWA: {
      dPoPSigningAlgValues: ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'RS256'],
    },
    ttl: { ClientCredentials: 600 },
    features: {
      devInteractions: { enabled: false },
      dPoP: { enabled: true },
      mTLS: { enabled: true, certificateBoundAccessTokens: true, getCertificate: peerCertificate },
      clientCredentials: { enabled: true },
      introspection: { enabled: true, allowedPolicy: ownTokenOrResourceServer },
      revocation: { enabled: true, allowedPolicy: ownTokenOrResourceServer },
      resourceIndicators: {
        enabled: true,
        // A token request without `resource` gets an opaque token, as from
        // IdPs that only issue opaque tokens.
        defaultResource: (ctx, caller, oneOf) => oneOf ?? OPAQUE_RESOURCE,
        getResourceServerInfo: (ctx, resource) => {
          const info = resourceServers[resource];
          if (!info) throw new errors.InvalidTarget();
          return info;
        },
      },
    },
  });
  if (!mtls) {
    server.on('request', provider.callback());
    console.log(JSON.stringify({ issuer, port }));
    return;
  }
  const tlsServer = createTlsServer({ ...mtls, requestCert: true, rejectUnauthorized: true });
  tlsServer.listen(Number(args['mtls-port']), '127.0.0.1', () => {
    const mtlsPort = tlsServer.address().port;
    // RFC 8705 section 5: the endpoints a client reaches with its certificate.
    provider.use(async (ctx, next) => {
      await next();
      if (ctx.oidc?.route === 'discovery' && ctx.body) {
        const alias = (url) => {
          const moved = new URL(url);
          moved.protocol = 'https:';
          moved.port = String(mtlsPort);
          return moved.href;
        };
        ctx.body.mtls_endpoint_aliases = Object.fromEntries(
          ['token_endpoint', 'introspection_endpoint', 'revocation_endpoint']
            .map((name) => [name, alias(ctx.body[name])]),
        );
      }
    });
    const callback = provider.callback();
    server.on('request', callback);
    tlsServer.on('request', callback);
    console.log(JSON.stringify({ issuer, port, mtls_port: mtlsPort }));
  });
});
