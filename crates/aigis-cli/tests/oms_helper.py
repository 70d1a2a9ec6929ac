"""Helpers for crates/aigis-cli/tests/oms_interop.rs: make keys and a test PKI with
`cryptography`, and drive model_signing's Python API where its CLI has no option (shard
serialization). Usage: python oms_helper.py COMMAND ARGS...

  keys DIR CURVE             -> DIR/CURVE.pem (SEC1 EC PRIVATE KEY), DIR/CURVE.pub
  pki DIR                    -> DIR/{ca,int,leaf}.pem, DIR/leaf.key (P-256 chain, codeSigning)
  sign-shards MODEL SIG KEY SHARD
  verify-shards MODEL SIG PUB SHARD
"""

import datetime
import pathlib
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def write_key(path, key):
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


def keys(out, curve):
    out = pathlib.Path(out)
    key = ec.generate_private_key({"p256": ec.SECP256R1(), "p384": ec.SECP384R1()}[curve])
    write_key(out / f"{curve}.pem", key)
    (out / f"{curve}.pub").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def cert(subject, issuer, pub, signer, ca, path_len=None, leaf=False):
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(pub)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_len), critical=True)
    )
    if leaf:
        b = b.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    else:
        b = b.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    return b.sign(signer, hashes.SHA256())


def pki(out):
    out = pathlib.Path(out)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    int_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert("Test Root", "Test Root", ca_key.public_key(), ca_key, True, 1)
    inter = cert("Test Intermediate", "Test Root", int_key.public_key(), ca_key, True, 0)
    leaf = cert("signer@example.com", "Test Intermediate", leaf_key.public_key(), int_key, False, leaf=True)
    for name, c in (("ca", ca), ("int", inter), ("leaf", leaf)):
        (out / f"{name}.pem").write_bytes(c.public_bytes(serialization.Encoding.PEM))
    write_key(out / "leaf.key", leaf_key)


def shards_config(shard):
    import model_signing

    return model_signing.hashing.Config().use_shard_serialization(shard_size=int(shard))


def sign_shards(model, sig, key, shard):
    import model_signing

    model_signing.signing.Config().use_elliptic_key_signer(private_key=pathlib.Path(key)).set_hashing_config(
        shards_config(shard)
    ).sign(model, sig)


def verify_shards(model, sig, pub, shard):
    import model_signing

    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=pathlib.Path(pub)).set_hashing_config(
        shards_config(shard)
    ).verify(model, sig)
    print("Verification succeeded")


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"keys": keys, "pki": pki, "sign-shards": sign_shards, "verify-shards": verify_shards}[cmd](*args)
