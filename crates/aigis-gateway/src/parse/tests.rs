use super::*;

fn limits() -> RequestLimits {
    RequestLimits {
        max_body: 1 << 20,
        max_header: 1 << 15,
        max_json_depth: 8,
        max_messages: 3,
        max_string: 64,
        max_n: 2,
    }
}

fn param(body: &str, endpoint: Endpoint) -> String {
    match parse(endpoint, Bytes::from(body.to_owned()), &limits()) {
        Err(GatewayError::Invalid { param, .. }) => param,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn accepts_a_normal_chat_request() {
    let p = parse(
        Endpoint::ChatCompletions,
        Bytes::from_static(br#"{"model":"m","stream":true,"max_tokens":5,"max_completion_tokens":9,"messages":[{"role":"user","content":"hi"}]}"#),
        &limits(),
    )
    .unwrap();
    assert!(p.stream);
    assert_eq!(p.model, "m");
    assert_eq!(p.requested_tokens(), Some(("max_completion_tokens", 9)));
}

#[test]
fn each_violation_names_its_field() {
    let chat = Endpoint::ChatCompletions;
    assert_eq!(param("[1]", chat), "body");
    assert_eq!(param("{\"model\":", chat), "body");
    assert_eq!(param(r#"{"messages":[{}]}"#, chat), "model");
    assert_eq!(param(r#"{"model":"m"}"#, chat), "messages");
    assert_eq!(param(r#"{"model":"m","messages":[]}"#, chat), "messages");
    assert_eq!(param(r#"{"model":"m","messages":"hi"}"#, chat), "messages");
    assert_eq!(
        param(r#"{"model":"m","messages":[{},{},{},{}]}"#, chat),
        "messages"
    );
    assert_eq!(param(r#"{"model":"m","messages":[{}],"n":3}"#, chat), "n");
    assert_eq!(
        param(r#"{"model":"m","messages":[{}],"max_tokens":-1}"#, chat),
        "max_tokens"
    );
    assert_eq!(
        param(r#"{"model":"m","messages":[{}],"stream":"yes"}"#, chat),
        "stream"
    );
    let long = "x".repeat(65);
    assert_eq!(
        param(
            &format!(r#"{{"model":"m","messages":[{{"content":"{long}"}}]}}"#),
            chat
        ),
        "messages[0].content"
    );
    assert_eq!(
        param(r#"{"model":"m","messages":[[[[[[[[[]]]]]]]]]}"#, chat),
        "body"
    );
    assert_eq!(
        param(r#"{"model":"m","messages":[{}]}"#, Endpoint::Messages),
        "max_tokens"
    );
    assert_eq!(param(r#"{"model":"m"}"#, Endpoint::Embeddings), "input");
    assert_eq!(
        param(
            r#"{"model":"m","input":"x","stream":true}"#,
            Endpoint::Embeddings
        ),
        "stream"
    );
}

/// The typed scan accepts exactly what the `Value` path accepts, with the same results,
/// and leaves every refusal to it.
#[test]
fn the_scan_agrees_with_the_value_path() {
    let long = "x".repeat(65);
    let bodies = [
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":16,"temperature":0}"#.to_owned(),
        r#"{"model":"m","stream":true,"max_tokens":5,"max_completion_tokens":9,"messages":[{}]}"#.to_owned(),
        r#"{"model":"m","stream":null,"n":null,"max_tokens":null,"messages":[{}]}"#.to_owned(),
        r#"{"model":"a","model":"b","messages":[{}],"messages":[{},{}]}"#.to_owned(),
        r#"{"model":"m\u0041\n","messages":[{"content":"\"[{"}]}"#.to_owned(),
        r#"{"model":"m","messages":[{}],"max_tokens":-0}"#.to_owned(),
        r#"{"model":"m","messages":[{}],"max_tokens":16.0}"#.to_owned(),
        r#"{"model":"m","messages":[{}],"max_tokens":0}"#.to_owned(),
        r#"{"model":"m","messages":[{}],"n":2}"#.to_owned(),
        r#"{"model":"m","messages":[{}],"n":-1}"#.to_owned(),
        r#"{"model":"","messages":[{}]}"#.to_owned(),
        r#"{"model":1,"messages":[{}]}"#.to_owned(),
        format!(r#"{{"model":"{}","messages":[{{}}]}}"#, "m".repeat(257)),
        format!(r#"{{"model":"m","messages":[{{"content":"{long}"}}]}}"#),
        format!(r#"{{"model":"m","messages":[{{"{long}":1}}]}}"#),
        format!(r#"{{"model":"m","messages":[{{}}],"x":"{long}","x":1}}"#),
        r#"{"model":"m","messages":null}"#.to_owned(),
        r#"{"model":"m","prompt":"p","input":"i","max_output_tokens":7}"#.to_owned(),
        r#"{"model":"m","prompt":["a","b"],"input":[],"stream":false}"#.to_owned(),
        r#"{"model":"m","input":null,"stream":true}"#.to_owned(),
        r#"{"model":"m","input":{},"max_tokens":3}"#.to_owned(),
        r#"{"model":"m","messages":[{}]} x"#.to_owned(),
        r#"{"model":"m","messages":[{}],}"#.to_owned(),
        r#"{"model":"m","messages":[1e999]}"#.to_owned(),
        r#"{"model":"m","messages":[[[[[[[{}]]]]]]]}"#.to_owned(),
        r#"{"model":"m","messages":[[[[[[[[]]]]]]]]}"#.to_owned(),
        r#"{"model":"m","messages":[{"a":{"b":[[[{}]]]}}]}"#.to_owned(),
        r#"{"model":"m","messages":[{"a":{"b":[[[[{}]]]]}}]}"#.to_owned(),
        r#""m""#.to_owned(),
        "null".to_owned(),
    ];
    let endpoints = [
        Endpoint::ChatCompletions,
        Endpoint::Completions,
        Endpoint::Embeddings,
        Endpoint::Responses,
        Endpoint::Messages,
    ];
    let summary = |r: Result<Parsed, GatewayError>| match r {
        Ok(p) => Ok((p.model, p.stream, p.tokens, (*p.json).clone())),
        Err(e) => Err(format!("{e:?}")),
    };
    let mut fast = 0;
    for body in &bodies {
        for endpoint in endpoints {
            let raw = Bytes::from(body.clone());
            let accepted = scan(&raw, &limits())
                .and_then(|mut t| t.accept(endpoint, &limits()))
                .is_some();
            fast += usize::from(accepted);
            let slow = summary(parse_value(endpoint, raw.clone(), &limits()));
            if accepted {
                assert!(slow.is_ok(), "{endpoint:?} {body}: {slow:?}");
            }
            assert_eq!(
                summary(parse(endpoint, raw, &limits())),
                slow,
                "{endpoint:?} {body}"
            );
        }
    }
    assert!(fast >= 15, "the scan accepted only {fast} cases");
}

#[test]
fn a_key_repeated_in_one_object_is_refused() {
    let chat = Endpoint::ChatCompletions;
    for (body, at) in [
        (r#"{"model":"m","messages":[{}],"model":"n"}"#, "body"),
        (
            r#"{"model":"m","messages":[{"role":"user","content":"a","content":"b"}]}"#,
            "messages[0]",
        ),
        (
            r#"{"model":"m","messages":[{"content":[{"text":"a"},{"text":"b","type":"t","text":"c"}]}]}"#,
            "messages[0].content[1]",
        ),
        // Long keys (hashed) and keys of 15 bytes (packed with their length).
        (
            r#"{"model":"m","messages":[{}],"a_long_parameter_name":1,"a_long_parameter_name":2}"#,
            "body",
        ),
        (
            r#"{"model":"m","messages":[{"fifteen_bytes_k":1,"fifteen_bytes_k":1}]}"#,
            "messages[0]",
        ),
        // Keys are compared after their escapes are decoded.
        (r#"{"model":"m","messages":[{}],"\u006dodel":"n"}"#, "body"),
    ] {
        assert_eq!(param(body, chat), at, "{body}");
    }
    let ok = |body: &str| parse(chat, Bytes::from(body.to_owned()), &limits()).is_ok();
    assert!(ok(
        r#"{"model":"m","messages":[{"a":1},{"a":2}],"a":{"a":3}}"#
    ));
    assert!(ok(
        r#"{"model":"m","messages":[{}],"fifteen_bytes_k":1,"fifteen_bytes_":2,"":3}"#
    ));
    // More keys than the scan keeps inline.
    let many = (0..40).fold(String::new(), |mut s, i| {
        let _ = write!(s, r#""k{i}":{i},"#);
        s
    });
    assert!(ok(&format!(r#"{{{many}"model":"m","messages":[{{}}]}}"#)));
    let repeated = format!(r#"{{{many}"model":"m","messages":[{{}}],"k39":0}}"#);
    assert_eq!(param(&repeated, chat), "body");
}

#[test]
fn the_lazy_body_can_be_changed() {
    let mut p = parse(
        Endpoint::ChatCompletions,
        Bytes::from_static(br#"{"model":"m","messages":[{"content":"hi"}]}"#),
        &limits(),
    )
    .unwrap();
    assert_eq!(p.json["messages"][0]["content"], "hi");
    p.json["model"] = Value::from("n");
    assert_eq!(p.json["model"], "n");
    assert_eq!(
        serde_json::to_string(&p.json).unwrap(),
        r#"{"model":"n","messages":[{"content":"hi"}]}"#
    );
}

#[test]
fn depth_scan_ignores_brackets_in_strings() {
    let body = r#"{"model":"m","messages":[{"content":"[[[[[[[[[[[[[[[[\"{{{{{{{{{{{"}]}"#;
    assert!(
        parse(
            Endpoint::ChatCompletions,
            Bytes::from_static(body.as_bytes()),
            &limits()
        )
        .is_ok()
    );
}

#[test]
fn paths_map_to_endpoints() {
    assert_eq!(
        Endpoint::from_path("/v1/chat/completions"),
        Some(Endpoint::ChatCompletions)
    );
    assert_eq!(
        Endpoint::from_path("/v1/messages"),
        Some(Endpoint::Messages)
    );
    assert_eq!(Endpoint::from_path("/v2/anything"), None);
}
