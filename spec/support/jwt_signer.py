#!/usr/bin/env python3
"""Test fixtures for the JWT verifier, made by an independent implementation.

Generates fresh Ed25519, RSA-2048 and P-256 key pairs with python3-cryptography
(Debian package python3-cryptography), signs one token per test case, and
prints a JSON document on stdout:

  {"now": <unix seconds>, "issuer": ..., "audience": ..., "dev_secret": ...,
   "jwks": "<JWKS JSON text>", "jwks_rotated": "<JWKS JSON text>",
   "tokens": {"<case>": "<compact JWS>", ...}}

Usage: python3 spec/support/jwt_signer.py fixtures
       python3 spec/support/jwt_signer.py hs256 SECRET '{"sub":"u"}'

The specs run it through io.popen, so our verifier is never tested against
tokens it signed itself.
"""
import base64
import hashlib
import hmac
import json
import sys
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ISSUER = "https://auth.example.test"
AUDIENCE = "todo-api"
DEV_SECRET = "dev-secret-for-tests-only-0123456789"


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_json(obj):
    return b64u(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def uint_bytes(n, size=None):
    size = size or (n.bit_length() + 7) // 8
    return n.to_bytes(size, "big")


class Keys:
    def __init__(self):
        self.ed = ed25519.Ed25519PrivateKey.generate()
        self.ed_other = ed25519.Ed25519PrivateKey.generate()
        self.ed_rotated = ed25519.Ed25519PrivateKey.generate()
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rsa_other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.ec_other = ec.generate_private_key(ec.SECP256R1())

    def ed_raw(self, key):
        return key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def jwk_ed(self, key, kid):
        # Better Auth's shape: no "use", alg EdDSA.
        return {"alg": "EdDSA", "crv": "Ed25519", "x": b64u(self.ed_raw(key)),
                "kty": "OKP", "kid": kid}

    def jwk_rsa(self, key, kid):
        nums = key.public_key().public_numbers()
        return {"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
                "n": b64u(uint_bytes(nums.n)), "e": b64u(uint_bytes(nums.e))}

    def jwk_ec(self, key, kid):
        nums = key.public_key().public_numbers()
        return {"kty": "EC", "kid": kid, "crv": "P-256",
                "x": b64u(uint_bytes(nums.x, 32)), "y": b64u(uint_bytes(nums.y, 32))}

    def rsa_pem(self):
        return self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def sign(header, claims, alg, key, raw_payload=None):
    """Compact JWS. alg picks the signing operation, independent of header."""
    payload = raw_payload if raw_payload is not None else json.dumps(
        claims, separators=(",", ":")).encode("utf-8")
    signing_input = (b64u_json(header) + "." + b64u(payload)).encode("ascii")
    if alg == "EdDSA":
        sig = key.sign(signing_input)
    elif alg == "RS256":
        sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "ES256":
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        sig = uint_bytes(r, 32) + uint_bytes(s, 32)
    elif alg == "ES256-DER":  # the wrong encoding for JWS
        sig = key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
    elif alg == "HS256":
        sig = hmac.new(key, signing_input, hashlib.sha256).digest()
    elif alg == "none":
        sig = b""
    else:
        raise ValueError(alg)
    return signing_input.decode("ascii") + "." + b64u(sig)


def fixtures():
    k = Keys()
    now = int(time.time())

    def claims(**over):
        c = {"sub": "user-1", "iss": ISSUER, "aud": AUDIENCE, "iat": now,
             "exp": now + 900, "email": "u1@example.test"}
        for name, value in over.items():
            if value is None:
                c.pop(name, None)
            else:
                c[name] = value
        return c

    ed_h = {"alg": "EdDSA", "kid": "ed1"}
    t = {}
    t["eddsa_valid"] = sign(ed_h, claims(), "EdDSA", k.ed)
    t["rs256_valid"] = sign({"alg": "RS256", "typ": "JWT", "kid": "rsa1"}, claims(),
                            "RS256", k.rsa)
    t["es256_valid"] = sign({"alg": "ES256", "kid": "ec1"}, claims(), "ES256", k.ec)
    t["hs256_valid"] = sign({"alg": "HS256", "typ": "JWT"}, claims(), "HS256",
                            DEV_SECRET.encode())
    t["aud_array_valid"] = sign(ed_h, claims(aud=["other-api", AUDIENCE]), "EdDSA", k.ed)
    t["within_skew"] = sign(ed_h, claims(exp=now - 30, iat=now - 600), "EdDSA", k.ed)
    t["expired"] = sign(ed_h, claims(exp=now - 3600, iat=now - 7200), "EdDSA", k.ed)
    t["expired_hs256"] = sign({"alg": "HS256"}, claims(exp=now - 3600, iat=now - 7200),
                              "HS256", DEV_SECRET.encode())
    t["not_yet_valid"] = sign(ed_h, claims(nbf=now + 3600), "EdDSA", k.ed)
    t["iat_future"] = sign(ed_h, claims(iat=now + 3600, exp=now + 7200), "EdDSA", k.ed)
    t["wrong_issuer"] = sign(ed_h, claims(iss="https://evil.example.test"), "EdDSA", k.ed)
    t["missing_issuer"] = sign(ed_h, claims(iss=None), "EdDSA", k.ed)
    t["wrong_audience"] = sign(ed_h, claims(aud="other-api"), "EdDSA", k.ed)
    t["wrong_audience_array"] = sign(ed_h, claims(aud=["a", "b"]), "EdDSA", k.ed)
    t["missing_exp"] = sign(ed_h, claims(exp=None), "EdDSA", k.ed)
    t["exp_not_number"] = sign(ed_h, claims(exp="tomorrow"), "EdDSA", k.ed)
    t["payload_not_json"] = sign(ed_h, None, "EdDSA", k.ed, raw_payload=b"not json")
    t["payload_array"] = sign(ed_h, None, "EdDSA", k.ed, raw_payload=b"[1,2]")
    t["crit_header"] = sign({"alg": "EdDSA", "kid": "ed1", "crit": ["exp"]}, claims(),
                            "EdDSA", k.ed)

    # Signatures that must not verify.
    h, p, s = t["eddsa_valid"].split(".")
    t["tampered_payload"] = h + "." + b64u_json(claims(sub="admin")) + "." + s
    t["eddsa_wrong_key"] = sign(ed_h, claims(), "EdDSA", k.ed_other)
    t["rs256_wrong_key"] = sign({"alg": "RS256", "kid": "rsa1"}, claims(), "RS256",
                                k.rsa_other)
    t["es256_wrong_key"] = sign({"alg": "ES256", "kid": "ec1"}, claims(), "ES256",
                                k.ec_other)
    t["es256_der_signature"] = sign({"alg": "ES256", "kid": "ec1"}, claims(), "ES256-DER",
                                    k.ec)
    t["hs256_wrong_secret"] = sign({"alg": "HS256"}, claims(), "HS256", b"not-the-secret")

    # Algorithm games.
    t["alg_none"] = sign({"alg": "none"}, claims(), "none", None)
    t["alg_none_kid"] = sign({"alg": "none", "kid": "ed1"}, claims(), "none", None)
    t["alg_None_caps"] = sign({"alg": "NONE", "kid": "ed1"}, claims(), "none", None)
    t["alg_missing"] = sign({"kid": "ed1"}, claims(), "EdDSA", k.ed)
    t["alg_unsupported"] = sign({"alg": "PS256", "kid": "rsa1"}, claims(), "RS256", k.rsa)
    # HS256 signed with the public key bytes as the HMAC secret, naming a JWKS kid.
    t["confusion_rsa_pem"] = sign({"alg": "HS256", "kid": "rsa1"}, claims(), "HS256",
                                  k.rsa_pem())
    t["confusion_ed_raw"] = sign({"alg": "HS256", "kid": "ed1"}, claims(), "HS256",
                                 k.ed_raw(k.ed))
    # A header alg that does not match the key held for its kid.
    t["alg_mismatch_rs_on_ed"] = sign({"alg": "RS256", "kid": "ed1"}, claims(), "RS256",
                                      k.rsa)
    t["alg_mismatch_ed_on_ec"] = sign({"alg": "EdDSA", "kid": "ec1"}, claims(), "EdDSA",
                                      k.ed)

    t["unknown_kid"] = sign({"alg": "EdDSA", "kid": "nope"}, claims(), "EdDSA", k.ed_other)
    t["no_kid"] = sign({"alg": "EdDSA"}, claims(), "EdDSA", k.ed)
    t["rotated"] = sign({"alg": "EdDSA", "kid": "ed2"}, claims(), "EdDSA", k.ed_rotated)

    # Structure.
    t["too_many_segments"] = t["eddsa_valid"] + ".AAAA"
    t["two_segments"] = h + "." + p
    t["header_array"] = b64u(b"[\"EdDSA\"]") + "." + p + "." + s
    t["header_not_json"] = b64u(b"{alg:EdDSA}") + "." + p + "." + s
    t["bad_base64"] = h + "." + p.replace(p[3], "+", 1) + "." + s
    t["padded_base64"] = h + "." + p + "=" + "." + s

    jwks = {"keys": [k.jwk_ed(k.ed, "ed1"), k.jwk_rsa(k.rsa, "rsa1"), k.jwk_ec(k.ec, "ec1"),
                     {"kty": "oct", "kid": "sym1", "k": b64u(b"symmetric-key-ignored")}]}
    rotated = {"keys": [k.jwk_ed(k.ed_rotated, "ed2"), k.jwk_ed(k.ed, "ed1")]}
    single = {"keys": [k.jwk_ed(k.ed, "ed1")]}
    return {
        "now": now, "issuer": ISSUER, "audience": AUDIENCE, "dev_secret": DEV_SECRET,
        "jwks": json.dumps(jwks), "jwks_rotated": json.dumps(rotated),
        "jwks_single": json.dumps(single), "tokens": t,
    }


def main(argv):
    if len(argv) == 2 and argv[1] == "fixtures":
        json.dump(fixtures(), sys.stdout)
        return 0
    if len(argv) == 4 and argv[1] == "hs256":
        print(sign({"alg": "HS256", "typ": "JWT"}, json.loads(argv[3]), "HS256",
                   argv[2].encode()))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
