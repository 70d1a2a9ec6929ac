use super::*;
use zeroize::Zeroizing;

fn x25519_pair() -> (Identity, Recipient) {
    let id = Identity::X25519(X25519Identity::generate().unwrap());
    let r = id.to_recipient().unwrap().unwrap();
    (id, r)
}

fn pq_pair() -> (Identity, Recipient) {
    let id = Identity::Pq(PqIdentity::generate().unwrap());
    let r = id.to_recipient().unwrap().unwrap();
    (id, r)
}

fn round_trip(ids: &[Identity], rs: &[Recipient], options: EncryptOptions, data: &[u8]) -> Vec<u8> {
    let mut sealed = Vec::new();
    assert_eq!(
        encrypt(rs, &options, data, &mut sealed).unwrap(),
        data.len() as u64
    );
    let mut plain = Vec::new();
    decrypt(ids, &sealed[..], &mut plain).unwrap();
    plain
}

#[test]
fn low_order_list_matches_x25519() {
    let scalar = [0x42u8; 32];
    for p in &pq::LOW_ORDER_POINTS {
        assert!(x25519::diffie_hellman(&scalar, p).is_none(), "{p:02x?}");
        let mut high = *p;
        high[31] |= 0x80;
        assert!(pq::is_low_order(&high));
    }
    let ok = X25519Identity::generate().unwrap().to_recipient().unwrap();
    assert!(x25519::diffie_hellman(&scalar, &ok.0).is_some());
    assert!(!pq::is_low_order(&ok.0));
}

#[test]
fn x25519_pq_and_armor_round_trip() {
    let (id, r) = x25519_pair();
    let data = vec![7u8; 200_000];
    assert_eq!(
        round_trip(
            std::slice::from_ref(&id),
            std::slice::from_ref(&r),
            EncryptOptions::default(),
            &data
        ),
        data
    );
    let armored = EncryptOptions {
        armor: true,
        ..EncryptOptions::default()
    };
    assert_eq!(round_trip(&[id], &[r], armored, &data), data);
    let (pid, pr) = pq_pair();
    assert_eq!(round_trip(&[pid], &[pr], armored, b"hi"), b"hi");
}

#[test]
fn keys_round_trip_through_bech32() {
    let (id, r) = pq_pair();
    let Identity::Pq(pid) = &id else {
        unreachable!()
    };
    let text = pid.to_bech32();
    assert!(text.starts_with("AGE-SECRET-KEY-PQ-1"));
    let again = Identity::parse(&text).unwrap();
    assert_eq!(
        again.to_recipient().unwrap().unwrap().to_string(),
        r.to_string()
    );
    assert!(r.to_string().starts_with("age1pq1"));
    let r2 = Recipient::parse(&r.to_string()).unwrap();
    assert_eq!(r2.to_string(), r.to_string());
}

#[test]
fn mixing_rules() {
    let (_, x) = x25519_pair();
    let (_, p) = pq_pair();
    let both = [x.clone(), p.clone()];
    assert!(matches!(
        encrypt(&both, &EncryptOptions::default(), &b""[..], Vec::new()),
        Err(Error::MixedRecipients)
    ));
    let forced = EncryptOptions {
        allow_mixed_pq: true,
        ..EncryptOptions::default()
    };
    assert!(encrypt(&both, &forced, &b""[..], Vec::new()).is_ok());
    let pass =
        Recipient::Scrypt(ScryptRecipient::new(Zeroizing::new("pw".into()), MIN_LOG_N).unwrap());
    assert!(matches!(
        encrypt(&[pass, x], &EncryptOptions::default(), &b""[..], Vec::new()),
        Err(Error::ScryptNotAlone)
    ));
    assert!(ScryptRecipient::new(Zeroizing::new("pw".into()), MIN_LOG_N - 1).is_err());
}

#[test]
fn wrong_identity_lists_stanza_types() {
    let (_, r) = pq_pair();
    let (other, _) = x25519_pair();
    let mut sealed = Vec::new();
    encrypt(&[r], &EncryptOptions::default(), &b"x"[..], &mut sealed).unwrap();
    let err = decrypt(&[other], &sealed[..], Vec::new()).unwrap_err();
    assert_eq!(err.class(), FailureClass::NoMatch);
    assert!(err.to_string().contains("mlkem768x25519"), "{err}");
}
