"""PDFs a school may send as its stamped copy, made in the tests: signed with a throwaway CA's institution
certificate (pyHanko), altered after signing, a text export of the Word file, a decompression bomb."""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import keys as akeys
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

from mailbot.demo import samples


def _name(org: str, cn: str) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(1, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _usage(ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(True, not ca, False, False, False, ca, ca, False, False)


@dataclass(frozen=True)
class Authority:
    """A throwaway CA (standing in for the government's) and its key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def make(cls, name: str = "Cơ quan chứng thực thử nghiệm") -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name, name))
            .issuer_name(_name(name, name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(True), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    def pem(self, path: Path) -> Path:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def issue(self, org: str, person: str) -> Signer:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(org, person))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .add_extension(_usage(False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return Signer(cert, key, self.cert)


@dataclass(frozen=True)
class Signer:
    """An institution's signing certificate (O = the institution, CN = the person) and its key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    issuer: x509.Certificate

    def sign(self, pdf: bytes) -> bytes:
        der = serialization.Encoding.DER
        signer = signers.SimpleSigner(
            signing_cert=ax509.Certificate.load(self.cert.public_bytes(der)),
            signing_key=akeys.PrivateKeyInfo.load(
                self.key.private_bytes(der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            ),
            cert_registry=SimpleCertificateStore.from_certs([ax509.Certificate.load(self.issuer.public_bytes(der))]),
        )
        meta = signers.PdfSignatureMetadata(field_name="ChuKySo")
        return signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), meta, signer=signer).getvalue()


def _pdf(objects: list[bytes]) -> bytes:
    return samples.pdf_of(objects, b"1.7")


def text_pdf(lines: list[str]) -> bytes:
    """A text-only page, as Word's "Save as PDF" gives (Helvetica, no image)."""
    body = b"BT /F1 12 Tf 72 780 Td 16 TL " + b" ".join(b"(%s) '" % ln.encode("latin-1") for ln in lines) + b" ET"
    return _pdf(
        [
            b"<</Type/Catalog/Pages 2 0 R>>",
            b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
            b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]/Resources<</Font<</F1 5 0 R>>>>/Contents 4 0 R>>",
            b"<</Length %d>>stream\n%s\nendstream" % (len(body), body),
            b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica/Encoding/WinAnsiEncoding>>",
        ]
    )


EXPORT_LINES = ["SO GD&DT HAI PHONG", "TRUONG THPT NGO QUYEN", "So: 15/BC-THPTNQ", "BAO CAO", "Ket qua thuc hien"]


def bomb_pdf(side: int = 30000) -> bytes:
    """One page whose image is ``side``² grey pixels of nothing: a few hundred kB that inflate to gigabytes."""
    packer, chunk, parts = zlib.compressobj(9), bytes(1 << 22), []
    for _ in range(side * side // len(chunk)):
        parts.append(packer.compress(chunk))
    parts.append(packer.flush())
    data = b"".join(parts)
    image = b"<</Type/XObject/Subtype/Image/Width %d/Height %d/ColorSpace/DeviceGray/BitsPerComponent 8" % (side, side)
    image += b"/Filter/FlateDecode/Length %d>>stream\n%s\nendstream" % (len(data), data)
    content = b"q 595 0 0 842 0 0 cm /Im0 Do Q"
    return _pdf(
        [
            b"<</Type/Catalog/Pages 2 0 R>>",
            b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
            b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]/Resources<</XObject<</Im0 5 0 R>>>>/Contents 4 0 R>>",
            b"<</Length %d>>stream\n%s\nendstream" % (len(content), content),
            image,
        ]
    )
