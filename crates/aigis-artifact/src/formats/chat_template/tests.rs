use aigis_report::Severity;
use proptest::prelude::*;

use super::analyse;

/// Representative templates written from the published structure of popular models' chat
/// formats (not copies): none may produce a signal.
pub(crate) const BENIGN: &[(&str, &str)] = &[
    (
        "llama3",
        "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
    ),
    (
        "llama3.1-tools",
        "{{- bos_token }}{%- if custom_tools is defined %}{%- set tools = custom_tools %}{%- endif %}{%- if not tools_in_user_message is defined %}{%- set tools_in_user_message = true %}{%- endif %}{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content']|trim %}{%- set messages = messages[1:] %}{%- else %}{%- set system_message = \"\" %}{%- endif %}{%- set ns = namespace(found=false) %}{%- for t in tools %}{{- t | tojson(indent=4) }}{%- endfor %}{%- for message in messages %}{%- if message.tool_calls is defined and message.tool_calls | length != 1 %}{{- raise_exception(\"This model only supports single tool-calls at once!\") }}{%- endif %}{%- if 'tool_calls' in message %}{%- set tool_call = message.tool_calls[0].function %}{{- '{\"name\": \"' + tool_call.name + '\", ' }}{{- '\"parameters\": ' }}{{- tool_call.arguments | tojson }}{%- endif %}{%- set ns.found = true %}{%- endfor %}",
    ),
    (
        "mistral",
        "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}",
    ),
    (
        "chatml",
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    ),
    (
        "gemma",
        "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}",
    ),
    (
        "qwen-reasoning",
        "{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}{%- for message in messages[::-1] %}{%- set index = (messages|length - 1) - loop.index0 %}{%- if ns.multi_step_tool and message.role == \"user\" and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}{%- set ns.multi_step_tool = false %}{%- set ns.last_query_index = index %}{%- endif %}{%- endfor %}{%- for message in messages %}{%- if '</think>' in message.content %}{%- set content = message.content.split('</think>')[-1].lstrip('\\n') %}{%- set reasoning = message.content.split('</think>')[0].rstrip('\\n').split('<think>')[-1] %}{%- endif %}{% generation %}{{ content }}{% endgeneration %}{%- endfor %}",
    ),
];

#[test]
fn benign_templates_have_no_signal() {
    for (name, template) in BENIGN {
        let a = analyse(template);
        assert!(a.parse_error.is_none(), "{name}: {:?}", a.parse_error);
        assert!(a.signals.is_empty(), "{name}: {:?}", a.signals);
    }
}

fn worst(template: &str) -> Option<Severity> {
    let a = analyse(template);
    assert!(a.unreadable.is_none(), "{template}: {:?}", a.unreadable);
    a.signals.iter().map(|s| s.severity).max()
}

#[test]
fn cve_2024_34359_payload_is_critical() {
    let payload = "{% for x in ().__class__.__base__.__subclasses__() %}{% if \"warning\" in x.__name__ %}{{x()._module.__builtins__['__import__']('os').popen(\"touch /tmp/pwned\")}}{%endif%}{% endfor %}";
    assert_eq!(worst(payload), Some(Severity::Critical));
}

#[test]
fn gadget_chains_are_critical() {
    for t in [
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ joiner.__init__.__globals__['os'].system('id') }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ self._TemplateReference__context.cycler.__init__.__globals__.os }}",
        "{{ request.application.__globals__.__builtins__.__import__('os') }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__ }}",
    ] {
        assert_eq!(worst(t), Some(Severity::Critical), "{t}");
    }
}

#[test]
fn split_names_are_folded() {
    for t in [
        "{{ cycler|attr('__in' ~ 'it__')|attr('__glo' ~ 'bals__') }}",
        "{{ x|attr(['__', 'globals', '__']|join) }}",
        "{{ x|attr('__slabolg__'|reverse) }}",
        "{{ x|attr('%sglobals%s'|format('__', '__')) }}",
        "{% set a = '__glo' %}{% set b = a ~ 'bals__' %}{{ x|attr(b) }}",
        "{{ x|attr('__slabolg__'[::-1]) }}",
        "{{ x|attr('_'*2 ~ 'globals' ~ '_'*2) }}",
        "{{ x['__glo' + 'bals__'] }}",
    ] {
        assert_eq!(
            worst(t),
            Some(Severity::Critical),
            "{t}: {:?}",
            analyse(t).signals
        );
    }
}

#[test]
fn other_dunders_and_os_names_are_high() {
    for t in [
        "{{ message.__class__ }}",
        "{{ message.__init__ }}",
        "{{ x._private }}",
        "{{ foo.popen('id') }}",
        "{{ foo.system('id').read() }}",
        "{{ foo.os }}",
        "{{ '{0.__globals__}'.format(x) }}",
    ] {
        assert_eq!(worst(t), Some(Severity::High), "{t}");
    }
}

#[test]
fn namespace_fields_named_like_functions_are_not_findings() {
    let t = "{% set ns = namespace(system='', eval=false) %}{% set ns.system = 'x' %}{{ ns.system }}{% if ns.eval %}{% endif %}";
    let a = analyse(t);
    assert!(a.signals.is_empty(), "{:?}", a.signals);
}

#[test]
fn computed_attr_names_and_module_variables_are_medium() {
    assert_eq!(worst("{{ x|attr(name) }}"), Some(Severity::Medium));
    assert_eq!(worst("{{ os }}"), Some(Severity::Medium));
    assert_eq!(worst("{% include '/etc/passwd' %}"), Some(Severity::Medium));
    assert_eq!(worst("{% import 'x.j2' as x %}"), Some(Severity::Medium));
    assert_eq!(worst("{{ cycler('a', 'b').next() }}"), Some(Severity::Low));
}

#[test]
fn unparsable_template_falls_back_to_tokens() {
    let a = analyse("{% unknowntag %}{{ x.__class__.__base__.__subclasses__() }}");
    assert!(a.parse_error.is_some());
    assert_eq!(
        a.signals.iter().map(|s| s.severity).max(),
        Some(Severity::Critical)
    );
    let a = analyse("{% unknowntag %}{{ x|attr('__glo' ~ 'bals__') }}");
    assert!(
        a.signals.iter().any(|s| s.severity == Severity::High),
        "{:?}",
        a.signals
    );
}

#[test]
fn evidence_names_line_and_column() {
    let a = analyse("hello\n{{ cycler.__init__.__globals__ }}");
    assert!(
        a.signals[0].evidence.starts_with("line 2:"),
        "{:?}",
        a.signals
    );
}

proptest! {
    #[test]
    fn arbitrary_templates_never_panic(s in "[{}%#a-z_.'~|()\\[\\] 0-9-]{0,80}") {
        let _ = analyse(&s);
    }

    #[test]
    fn mutated_benign_templates_never_panic(i in 0usize..6, cut in 0usize..2000, flip in 0usize..2000, c in any::<char>()) {
        let (_, t) = BENIGN[i];
        let mut chars: Vec<char> = t.chars().collect();
        if let Some(x) = chars.get_mut(flip) { *x = c; }
        chars.truncate(cut);
        let _ = analyse(&chars.into_iter().collect::<String>());
    }
}
