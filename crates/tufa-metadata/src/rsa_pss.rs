//! RSASSA-PSS verification with any salt length (RFC 8017, 8.1.2 and 9.1.2).
//!
//! aws-lc-rs only verifies PSS with the salt length fixed in advance;
//! securesystemslib verifies with `PSS.AUTO`, reading the salt length from the
//! encoded message. This fallback runs only when the fast path has failed. It
//! works on public values only, so constant time is not needed.

use num_bigint::BigUint;
use spki::der::Decode;

use crate::hash::HashAlgorithm;

/// Verifies `sig` over `msg` with the PKCS#1 `RSAPublicKey` DER in `public`.
pub(crate) fn verify_any_salt(public: &[u8], hash: HashAlgorithm, msg: &[u8], sig: &[u8]) -> bool {
    let Ok(key) = pkcs1::RsaPublicKey::from_der(public) else {
        return false;
    };
    let n = BigUint::from_bytes_be(key.modulus.as_bytes());
    let e = BigUint::from_bytes_be(key.public_exponent.as_bytes());
    let k = n.bits().div_ceil(8) as usize;
    if sig.len() != k || n.bits() < 2 {
        return false;
    }
    let s = BigUint::from_bytes_be(sig);
    if s >= n {
        return false;
    }
    let m = s.modpow(&e, &n);
    let em_bits = (n.bits() - 1) as usize;
    let em_len = em_bits.div_ceil(8);
    let m_bytes = m.to_bytes_be();
    if m_bytes.len() > em_len {
        return false;
    }
    let mut em = vec![0u8; em_len - m_bytes.len()];
    em.extend_from_slice(&m_bytes);
    emsa_pss_verify(hash, msg, &em, em_bits)
}

fn emsa_pss_verify(hash: HashAlgorithm, msg: &[u8], em: &[u8], em_bits: usize) -> bool {
    let h_len = hash.digest_len();
    let em_len = em.len();
    if em_len < h_len + 2 || em[em_len - 1] != 0xbc {
        return false;
    }
    let (masked_db, rest) = em.split_at(em_len - h_len - 1);
    let h = &rest[..h_len];
    let zero_bits = 8 * em_len - em_bits;
    let top_mask = if zero_bits == 0 {
        0u8
    } else {
        0xffu8 << (8 - zero_bits)
    };
    if masked_db[0] & top_mask != 0 {
        return false;
    }
    let mut db = mgf1(hash, h, masked_db.len());
    for (d, m) in db.iter_mut().zip(masked_db) {
        *d ^= m;
    }
    db[0] &= !top_mask;
    let Some(one) = db.iter().position(|&b| b != 0) else {
        return false;
    };
    if db[one] != 0x01 {
        return false;
    }
    let salt = &db[one + 1..];
    let mut hasher = hash.hasher();
    hasher.update(&[0u8; 8]);
    hasher.update(&hash.digest(msg));
    hasher.update(salt);
    hasher.finalize() == h
}

fn mgf1(hash: HashAlgorithm, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + hash.digest_len());
    let mut counter: u32 = 0;
    while out.len() < len {
        let mut hasher = hash.hasher();
        hasher.update(seed);
        hasher.update(&counter.to_be_bytes());
        out.extend_from_slice(&hasher.finalize());
        counter += 1;
    }
    out.truncate(len);
    out
}
