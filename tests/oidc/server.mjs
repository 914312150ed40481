// A real OpenID provider (oidc-provider) on 127.0.0.1 for tollgate's tests.
//
//   node server.mjs --jwks keys.json [--port 0]
//       Serves; prints {"issuer":"http://127.0.0.1:PORT","port":PORT} once listening.
//   node server.mjs --generate-keys keys.json [--kid key-1]
//       Writes a private JWK set holding one new RS256 key, then exits.
//
// The clients, secrets and resources are described in README.md.

import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PORT ?? '0' },
    jwks: { type: 'string' },
    'generate-keys': { type: 'string' },
    kid: { type: 'string', default: 'key-1' },
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

const client = (id, method, grantTypes) => ({
  client_id: id,
  client_secret: `${id}-secret`,
  token_endpoint_auth_method: method,
  grant_types: grantTypes,
  response_types: [],
  redirect_uris: [],
});

// The resource server's own credentials: may introspect and revoke any token.
const RESOURCE_SERVER_CLIENTS = new Set(['tollgate', 'tollgate-post']);
const ownTokenOrResourceServer = (ctx, caller, token) =>
  token.clientId === caller.clientId || RESOURCE_SERVER_CLIENTS.has(caller.clientId);

const server = createServer();
server.listen(Number(args.port), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    jwks: JSON.parse(readFileSync(args.jwks, 'utf8')),
    clients: [
      client('basic-client', 'client_secret_basic', ['client_credentials']),
      client('post-client', 'client_secret_post', ['client_credentials']),
      client('tollgate', 'client_secret_basic', []),
      client('tollgate-post', 'client_secret_post', []),
    ],
    scopes: ['read', 'write'],
    ttl: { ClientCredentials: 600 },
    features: {
      devInteractions: { enabled: false },
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
  server.on('request', provider.callback());
  console.log(JSON.stringify({ issuer, port }));
});
