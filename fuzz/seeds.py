#!/usr/bin/env python3
"""Writes the generated part of the seed corpus: signed tokens for the `jws`
target, requests for `extract`, paths for `paths`. Run from anywhere:

    python3 fuzz/seeds.py

Needs the `cryptography` package (pip install cryptography). The output is
committed; rerun only to change the seeds. ES256 signatures are randomised,
so a rerun changes those files.
"""
import base64
import json
import pathlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

FUZZ = pathlib.Path(__file__).resolve().parent
KEYS = FUZZ.parent / "tests" / "fixtures" / "keys"
EXP = 4102444800  # 2100-01-01: the seeds stay valid


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def part(obj) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def key(name):
    return serialization.load_pem_private_key((KEYS / name).read_bytes(), None)


def sign(alg, header, claims):
    signing_input = f"{part(header)}.{part(claims)}".encode()
    if alg == "RS256":
        sig = key("rsa-2048.pem").sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "ES256":
        der = key("ec-p256-1.pem").sign(signing_input, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg == "EdDSA":
        sig = key("ed25519.pem").sign(signing_input)
    else:
        raise ValueError(alg)
    return f"{signing_input.decode()}.{b64(sig)}"


def write(target, name, data):
    folder = FUZZ / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data.encode() if isinstance(data, str) else data)


def write_all(target, cases):
    for name, data in cases.items():
        write(target, name, data)


def jws():
    good = {
        "RS256": ({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"}, "https://rs.fuzz.test", {}),
        "ES256": ({"alg": "ES256", "kid": "ec-1"}, "https://es.fuzz.test", {"aud": "api"}),
        "EdDSA": ({"alg": "EdDSA", "kid": "ed-1"}, "https://ed.fuzz.test", {}),
    }
    for alg, (header, iss, extra) in good.items():
        claims = {"iss": iss, "sub": "svc", "exp": EXP, "iat": 1700000000,
                  "scope": "read write", **extra}
        token = sign(alg, header, claims)
        write("jws", f"valid-{alg}", token)
        no_kid = {k: v for k, v in header.items() if k != "kid"}
        write("jws", f"valid-{alg}-no-kid", sign(alg, no_kid, claims))
        h, p, s = token.split(".")
        write("jws", f"{alg}-truncated-signature", f"{h}.{p}.{s[:10]}")
        write("jws", f"{alg}-empty-signature", f"{h}.{p}.")
        write("jws", f"{alg}-expired", sign(alg, header, {**claims, "exp": 1000}))
        write("jws", f"{alg}-crit", sign(alg, {**header, "crit": ["exp"]}, claims))
        write("jws", f"{alg}-exp-string", sign(alg, header, {**claims, "exp": str(EXP)}))
        write("jws", f"{alg}-five-parts", f"{h}.{p}.{s}.{s}.{s}")
    rs = json.loads(open(KEYS / "rsa-2048.jwk.json").read())
    claims = {"iss": "https://rs.fuzz.test", "exp": EXP}
    write("jws", "alg-none", f"{part({'alg': 'none'})}.{part(claims)}.")
    write("jws", "alg-NoNe", f"{part({'alg': 'NoNe'})}.{part(claims)}.")
    write("jws", "hs256-public-key", f"{part({'alg': 'HS256', 'kid': 'rsa-1'})}.{part(claims)}.{b64(rs['n'].encode())}")
    array_header = b64(b'["RS256","rsa-1"]')
    write("jws", "header-array", f"{array_header}.{part(claims)}.AAAA")
    write("jws", "jwk-header", f"{part({'alg': 'RS256', 'jwk': rs})}.{part(claims)}.AAAA")
    write("jws", "es256-zero-signature",
          f"{part({'alg': 'ES256', 'kid': 'ec-1'})}.{part({**claims, 'iss': 'https://es.fuzz.test', 'aud': 'api'})}.{b64(bytes(64))}")
    duplicate = b64(b'{"alg":"RS256","alg":"none"}')
    write("jws", "duplicate-alg", f"{duplicate}.{part(claims)}.AAAA")
    # RFC 7515 §4: unknown header members are ignored whatever their type.
    for alg, (header, iss, extra) in good.items():
        claims = {"iss": iss, "sub": "svc", "exp": EXP, **extra}
        odd = {**header, "ver": 2, "x": {"n": [1, True, None]}, "y": None, "z": False}
        write("jws", f"valid-{alg}-unknown-members", sign(alg, odd, claims))


# The fuzz body's fixed request, token and clock (fuzz/bodies/dpop.rs).
DPOP_URL = "https://api.fuzz.test/orders/1"
DPOP_TOKEN = "fuzz-access-token"
DPOP_NOW = 1700000000


def public_jwk(name):
    jwk = json.loads((KEYS / f"{name}.jwk.json").read_text())
    return {k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y", "n", "e")}


def dpop():
    ath = b64(hashes_sha256(DPOP_TOKEN.encode()))
    claims = {"jti": "seed-1", "htm": "GET", "htu": DPOP_URL, "iat": DPOP_NOW, "ath": ath}
    keys = {"ES256": "ec-p256-1", "RS256": "rsa-2048", "EdDSA": "ed25519"}
    for alg, name in keys.items():
        header = {"typ": "dpop+jwt", "alg": alg, "jwk": public_jwk(name)}
        proof = sign(alg, header, claims)
        write("dpop", f"valid-{alg}", proof)
        h, p, s = proof.split(".")
        write("dpop", f"{alg}-truncated-signature", f"{h}.{p}.{s[:10]}")
        write("dpop", f"{alg}-wrong-typ", sign(alg, {**header, "typ": "JWT"}, claims))
        write("dpop", f"{alg}-wrong-htu", sign(alg, header, {**claims, "htu": DPOP_URL + "x"}))
        write("dpop", f"{alg}-stale", sign(alg, header, {**claims, "iat": DPOP_NOW - 3600}))
        write("dpop", f"{alg}-unknown-members", sign(alg, {**header, "ver": 2, "kid": None}, claims))
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": public_jwk("ec-p256-1")}
    write("dpop", "alg-none", f"{part(header)}.{part(claims)}.")
    private = json.loads((KEYS / "ec-p256-1.jwk.json").read_text())
    private["d"] = "AAAA"
    write("dpop", "private-jwk", sign("ES256", {**header, "alg": "ES256", "jwk": private}, claims))
    write("dpop", "two-proofs", f"{(FUZZ / 'corpus' / 'dpop' / 'valid-ES256').read_text()},x.y.z")


def hashes_sha256(data):
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


def extract():
    token = (FUZZ / "corpus" / "jws" / "valid-RS256").read_text()
    cases = {
        "bearer": f"\x00authorization: Bearer {token}",
        "bearer-lowercase-spaces": f"\x00authorization: bearer    {token}",
        "two-bearers": "\x00authorization: Bearer one\nauthorization: Bearer two",
        "joined-bearers": "\x00authorization: Bearer one, Bearer two",
        "basic": "\x00authorization: Basic dXNlcjpwYXNz",
        "all-sources-same": f"\x01authorization: Bearer abc\nx-octelium-auth: abc\nx-api-key: Token abc\ncookie: a=1; session=abc\n?x=1&access_token=abc",
        "query-lookalike": "\x01?access%5Ftoken=abc&access_token=abc",
        "query-percent": "\x01?access_token=a%2Bb%3D",
        "cookie-quoted": "\x02cookie: _oauth2_proxy=\"abc.def\"; other=x",
        "forwarded": f"\x02x-forwarded-access-token: {token}",
        "dpop": "\x03authorization: DPoP abc\n?token=abc",
        "bad-escape": "\x03?token=%zz",
        "empty-bearer": "\x00authorization: Bearer ",
    }
    write_all("extract", cases)


def paths():
    cases = {
        "dot-dot": "/public/../admin\napi.example.com\nGET\np/admin\np/public",
        "encoded-dots": "/public/%2e%2e/admin\napi.example.com:8443\nGET\np/admin",
        "encoded-slash": "/public%2F..%2Fadmin\nexample.com\nGET\np/public",
        "double-slash": "//admin//x\nexample.com\nPOST\ne/admin/x\tapi.example.com\tGET",
        "path-parameters": "/admin;jsessionid=1/x\n[::1]:80\nGET\np/admin",
        "dot-dot-parameter": "/..;/admin\nhost.\nGET\np/",
        "prefix-boundary": "/administrator\nExample.COM\nGET\np/admin\np/",
        "templates": "/files/a/b/\n\nDELETE\nt/files/{**}\nt/files/{*}/b\nt/*\nr/files/.*",
        "shadow": "/api/v1/x\na.example.com\nGET\np/api\t*.example.com\nt/api/{*}/x\ta.example.com\tGET",
        "query-fragment": "/a?b=/c#/d\n\nGET\ne/a",
        "percent-roundtrip": "/a%25b%3Fc%23d\n\nGET\ne/a%25b%3Fc%23d",
        "regex": "/v1/users/42\n\nGET\nr/v1/users/[0-9]+\nr(a)|(b)",
        "ipv6-zone": "/\n[fe80::1%25eth0]:8080\nGET\na",
        "control": "/a%00b\n\nGET\na",
        "backslash": "/a\\..\\admin\n\nGET\na",
    }
    write_all("paths", cases)


def jwks():
    """Documents shaped like Keycloak's, Auth0's and Okta's, with the fixture
    public keys (their own published keys would change), and broken ones."""
    def jwk(name):
        return json.loads((KEYS / name).read_text())

    rsa, ec1, ec384, ed = (jwk(n) for n in ("rsa-2048.jwk.json", "ec-p256-1.jwk.json",
                                            "ec-p384.jwk.json", "ed25519.jwk.json"))
    idcs = json.loads((KEYS / "idcs-style.json").read_text())["keys"][0]
    x5c = idcs.get("x5c", [])
    bare_rsa = {"n": rsa["n"], "e": rsa["e"]}
    docs = {
        # Keycloak: a signing key with certificate members and an encryption key.
        "keycloak": {"keys": [
            {"kid": "kc-sig", "kty": "RSA", "alg": "RS256", "use": "sig", **bare_rsa,
             "x5c": x5c, "x5t": idcs.get("x5t", ""), "x5t#S256": idcs.get("x5t#S256", "")},
            {"kid": "kc-enc", "kty": "RSA", "alg": "RSA-OAEP", "use": "enc", **bare_rsa,
             "x5c": x5c},
        ]},
        # Auth0: certificate members, `alg` after the key.
        "auth0": {"keys": [
            {"kty": "RSA", "use": "sig", **bare_rsa, "kid": "a0-1", "x5t": idcs.get("x5t", ""),
             "x5c": x5c, "alg": "RS256"},
        ]},
        # Okta: plain RSA members.
        "okta": {"keys": [{"kty": "RSA", "alg": "RS256", "kid": "okta-1", "use": "sig", **bare_rsa}]},
        "ec-and-okp": {"keys": [ec1, ec384, ed]},
        "short-rsa": {"keys": [jwk("rsa-1024.jwk.json")]},
        "oct": {"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]},
        "wrong-curve": {"keys": [{**ec1, "crv": "P-384"}, {**ed, "crv": "X25519"}]},
        "alg-mismatch": {"keys": [{**rsa, "alg": "ES256"}, {**ec1, "alg": "RS256"}]},
        "padded-and-sign-byte": {"keys": [{**rsa, "n": "AA" + rsa["n"] + "==", "kid": 7}]},
        "no-keys": {"issuer": "x"},
    }
    write_all("jwks", {f"{name}.json": json.dumps(doc) for name, doc in docs.items()})


jws()
dpop()
extract()
paths()
jwks()
