//! The built-in rule table.
//!
//! Every rule was written from the provider's published token format (prefix, length, alphabet)
//! or, where a provider publishes no distinctive format, as a *context rule*: the provider's name
//! followed by an assignment (`DATADOG_API_KEY=…`, `"datadog_key": "…"`) of a value with the
//! provider's alphabet and length.
//!
//! Conventions the engine relies on (checked by the tests):
//! - the match starts at one of the rule's keywords, unless the rule declares `before` bytes of
//!   lead-in (a URL scheme in front of a host keyword, say);
//! - a keyword containing an uppercase ASCII letter is matched exactly, an all-lowercase keyword
//!   case-insensitively;
//! - the named group `s`, when present, is the secret value; otherwise the whole match is.

use super::checks::Check;

/// How a rule recognises its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A distinctive literal prefix or structure: the match alone is convincing.
    Token,
    /// A provider-specific value shape after a provider-named assignment: placeholders rejected.
    Context,
    /// Any value after `password=`, `api_key:`, `secret:`…: placeholders rejected, and the value
    /// must look like a secret (a digit or mixed case, no code references, trailing punctuation
    /// trimmed).
    Generic,
}

/// One rule as written in the table; compiled by [`super::Secrets::new`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Spec {
    pub id: &'static str,
    pub description: &'static str,
    pub keywords: &'static [&'static str],
    pub pattern: &'static str,
    pub confidence: f32,
    pub check: Check,
    /// Minimum Shannon entropy (bits per byte) of the secret value; 0 disables the test.
    pub min_entropy: f32,
    /// How much the value alone says; decides which plausibility filters apply.
    pub kind: Kind,
    /// Bytes of lead-in allowed before the keyword hit.
    pub before: u16,
    /// The lead-in may reach a streaming client before the keyword arrives: it is an identifier
    /// (Terraform, Firebase) or at most 3 characters of a long secret (Entra ID), so a stream
    /// does not hold every plain word for it (see `Secrets::could_start`).
    pub lead_may_show: bool,
    /// Bytes searched after the keyword hit; 0 means "the pattern's maximum length".
    pub window: u16,
}

/// A token with a distinctive literal prefix (or a complete structure such as a PEM block).
const fn tok(
    id: &'static str,
    description: &'static str,
    keywords: &'static [&'static str],
    pattern: &'static str,
    confidence: f32,
) -> Spec {
    Spec {
        id,
        description,
        keywords,
        pattern,
        confidence,
        check: Check::None,
        // Even a prefixed token is random after its prefix; documentation stand-ins
        // (`sk_live_000…`, `AKIA` + `AAAA…`) are not.
        min_entropy: 3.0,
        kind: Kind::Token,
        before: 0,
        lead_may_show: false,
        window: 0,
    }
}

/// A value recognised only by the provider name assigned to it: lower confidence, and the value
/// must look random (entropy) and not be a placeholder.
const fn ctx(
    id: &'static str,
    description: &'static str,
    keywords: &'static [&'static str],
    pattern: &'static str,
) -> Spec {
    Spec {
        min_entropy: 3.0,
        kind: Kind::Context,
        ..tok(id, description, keywords, pattern, 0.7)
    }
}

impl Spec {
    const fn check(self, check: Check) -> Self {
        Spec { check, ..self }
    }
    const fn before(self, before: u16) -> Self {
        Spec { before, ..self }
    }
    const fn lead_may_show(self) -> Self {
        Spec {
            lead_may_show: true,
            ..self
        }
    }
    const fn window(self, window: u16) -> Self {
        Spec { window, ..self }
    }
    const fn entropy(self, min_entropy: f32) -> Self {
        Spec {
            min_entropy,
            ..self
        }
    }
    const fn confidence(self, confidence: f32) -> Self {
        Spec { confidence, ..self }
    }
    const fn generic(self) -> Self {
        Spec {
            kind: Kind::Generic,
            ..self
        }
    }
}

/// `keyword … [:=] value`: the provider name, up to 24 identifier characters (`_API_KEY`), an
/// optional closing quote, an assignment operator, an optional opening quote, then the value.
macro_rules! assign {
    ($kw:literal, $value:literal) => {
        concat!(
            "(?i:",
            $kw,
            r#")[[:word:].\-]{0,24}?["']?\s{0,4}(?:=>|:=|[:=])\s{0,4}["']?(?P<s>"#,
            $value,
            ")"
        )
    };
}

/// A PEM block with the given label; the body is base64 with optional RFC 1421 headers.
macro_rules! pem {
    ($label:literal) => {
        concat!(
            "-----BEGIN ",
            $label,
            r"-----[A-Za-z0-9+/=\s:,\-]{16,}?-----END ",
            $label,
            "-----"
        )
    };
}

/// The built-in rules. Order matters only as the last tie-break between equally scored rules
/// reporting the same span: earlier (more specific) rules win.
#[rustfmt::skip]
pub(super) static SPECS: &[Spec] = &[
    // ---- Private keys -------------------------------------------------------------------------
    tok("private-key-rsa", "PEM PKCS#1 RSA private key block", &["-----BEGIN RSA PRIVATE KEY-----"], pem!("RSA PRIVATE KEY"), 0.97).check(Check::PemDer).window(16100),
    tok("private-key-ec", "PEM SEC1 elliptic-curve private key block", &["-----BEGIN EC PRIVATE KEY-----"], pem!("EC PRIVATE KEY"), 0.97).check(Check::PemDer).window(16100),
    tok("private-key-dsa", "PEM DSA private key block", &["-----BEGIN DSA PRIVATE KEY-----"], pem!("DSA PRIVATE KEY"), 0.97).check(Check::PemDer).window(16100),
    tok("private-key-pkcs8", "PEM PKCS#8 private key block", &["-----BEGIN PRIVATE KEY-----"], pem!("PRIVATE KEY"), 0.97).check(Check::PemDer).window(16100),
    tok("private-key-pkcs8-encrypted", "PEM PKCS#8 encrypted private key block", &["-----BEGIN ENCRYPTED PRIVATE KEY-----"], pem!("ENCRYPTED PRIVATE KEY"), 0.9).check(Check::PemDer).window(16100),
    tok("private-key-openssh", "OpenSSH private key block", &["-----BEGIN OPENSSH PRIVATE KEY-----"], pem!("OPENSSH PRIVATE KEY"), 0.97).check(Check::PemOpenSsh).window(16100),
    tok("private-key-pgp", "OpenPGP private key block (ASCII armor)", &["-----BEGIN PGP PRIVATE KEY BLOCK-----"], pem!("PGP PRIVATE KEY BLOCK"), 0.97).check(Check::PgpArmor).window(16100),
    tok("private-key-ssh2", "SSH.com / SECSH encrypted private key block", &["---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----"], r#"---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----[A-Za-z0-9+/=\s:,\-"\\]{16,}?---- END SSH2 ENCRYPTED PRIVATE KEY ----"#, 0.9).window(16100),
    tok("private-key-putty", "PuTTY private key file (.ppk)", &["PuTTY-User-Key-File-"], r"PuTTY-User-Key-File-[23]: [a-z0-9\-@.]{3,40}\r?\nEncryption: [a-z0-9\-]{3,20}\r?\nComment: [^\r\n]*\r?\nPublic-Lines: [0-9]{1,3}\r?\n[A-Za-z0-9+/=\r\n]{16,}?(?:Key-Derivation|Private-Lines)[^\n]*\n[\s\S]{16,}?Private-MAC: [0-9a-f]{40,64}", 0.95).window(16100),
    tok("private-key-json-escaped", "PEM private key inside a JSON string (\\n-escaped)", &["-----BEGIN PRIVATE KEY-----\\n", "-----BEGIN RSA PRIVATE KEY-----\\n"], r"-----BEGIN (?:RSA )?PRIVATE KEY-----\\n(?:[A-Za-z0-9+/=]{1,80}\\n){4,200}-----END (?:RSA )?PRIVATE KEY-----", 0.95).window(16100),
    tok("age-secret-key", "age encryption secret key (bech32)", &["AGE-SECRET-KEY-1"], "AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}", 0.9).check(Check::AgeBech32),
    tok("kubeconfig-client-key", "Kubernetes client-key-data (base64 PEM private key)", &["client-key-data"], r"client-key-data:\s{0,4}(?P<s>LS0tLS1CRUdJTi[A-Za-z0-9+/=]{60,})", 0.95).window(12100),
    // ---- JSON Web Tokens ----------------------------------------------------------------------
    tok("jwt", "JSON Web Token (header decodes to JSON with alg)", &["eyJ"], r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*", 0.8).check(Check::Jwt).window(14100),
    // ---- AWS ----------------------------------------------------------------------------------
    tok("aws-access-key-id", "AWS long-term access key id", &["AKIA"], "AKIA[A-Z2-7]{16}", 0.9),
    tok("aws-temporary-access-key-id", "AWS temporary (STS) access key id", &["ASIA"], "ASIA[A-Z2-7]{16}", 0.85),
    ctx("aws-secret-access-key", "AWS secret access key assigned to an aws_secret… name", &["aws"], r#"(?i:aws)[[:word:].\-]{0,24}?(?i:secret)[[:word:].\-]{0,24}?["']?\s{0,4}(?:=>|:=|[:=])\s{0,4}["']?(?P<s>[A-Za-z0-9/+]{40})"#).confidence(0.9).entropy(3.5),
    tok("aws-secret-near-key-id", "40-character AWS secret access key within a few lines after an access key id", &["AKIA", "ASIA"], r"(?:AKIA|ASIA)[A-Z2-7]{16}[^A-Za-z0-9/+][\x00-\x7F]{0,160}?[^A-Za-z0-9/+](?P<s>[A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)", 0.85).entropy(4.0),
    ctx("aws-session-token", "AWS session token assigned to an aws_session_token name", &["aws"], r#"(?i:aws[_\-]session[_\-]token)["']?\s{0,4}(?:=>|:=|[:=])\s{0,4}["']?(?P<s>[A-Za-z0-9/+=]{100,})"#).confidence(0.9),
    tok("aws-mws-key", "Amazon Marketplace Web Service auth token", &["amzn.mws."], r"amzn\.mws\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", 0.9),
    // ---- Google Cloud / Firebase --------------------------------------------------------------
    ctx("gemini-api-key", "Google AI Studio (Gemini) API key assigned to a gemini name", &["gemini"], assign!("gemini", r"AIza[0-9A-Za-z_\-]{35}")).confidence(0.93).entropy(0.0),
    tok("gcp-api-key", "Google Cloud / Firebase API key", &["AIza"], r"AIza[0-9A-Za-z_\-]{35}", 0.9),
    tok("gcp-oauth-client-secret", "Google OAuth client secret", &["GOCSPX-"], r"GOCSPX-[A-Za-z0-9_\-]{28}", 0.95),
    tok("gcp-oauth-access-token", "Google OAuth 2.0 access token", &["ya29."], r"ya29\.[0-9A-Za-z_\-]{30,}", 0.85).window(1010),
    tok("gcp-oauth-refresh-token", "Google OAuth 2.0 refresh token", &["1//0"], r"1//0[0-9A-Za-z_\-]{40,}", 0.75),
    tok("gcp-service-account-key", "Google service-account JSON private key", &["\"service_account\""], r#""service_account"[\s\S]{0,}?"private_key"\s{0,4}:\s{0,4}"(?P<s>-----BEGIN PRIVATE KEY-----\\n[A-Za-z0-9+/=\\]{64,}-----END PRIVATE KEY-----(?:\\n)?)""#, 0.97).window(12000),
    tok("firebase-cloud-messaging-key", "Firebase Cloud Messaging legacy server key", &[":APA91b"], r"[A-Za-z0-9_\-]{7,11}:APA91b[A-Za-z0-9_\-]{130,140}", 0.9).before(12).lead_may_show(),
    // ---- Azure --------------------------------------------------------------------------------
    tok("azure-storage-connection-string", "Azure Storage connection string with account key", &["defaultendpointsprotocol="], r"(?i:DefaultEndpointsProtocol=https?;AccountName=[a-z0-9]{3,24};AccountKey=)(?P<s>[A-Za-z0-9+/]{86}==)", 0.97),
    tok("azure-storage-account-key", "Azure Storage account key", &["accountkey="], r"(?i:AccountKey=)(?P<s>[A-Za-z0-9+/]{86}==)", 0.9),
    tok("azure-cosmosdb-connection-string", "Azure Cosmos DB connection string", &["accountendpoint=https://"], r"(?i:AccountEndpoint=https://)[a-z0-9\-]{3,44}\.documents\.azure\.com:443/;(?i:AccountKey=)(?P<s>[A-Za-z0-9+/]{86}==)", 0.97),
    tok("azure-service-bus-connection-string", "Azure Service Bus / Event Hubs shared access key", &["endpoint=sb://"], r"(?i:Endpoint=sb://)[a-z0-9\-]{3,50}\.servicebus\.windows\.net/;(?i:SharedAccessKeyName=)[[:word:]\-]{1,64};(?i:SharedAccessKey=)(?P<s>[A-Za-z0-9+/]{43}=)", 0.95),
    tok("azure-app-configuration-connection-string", "Azure App Configuration connection string", &[".azconfig.io;"], r"(?i:Endpoint=)https://[a-z0-9\-]{5,50}\.azconfig\.io;(?i:Id=)[A-Za-z0-9+/=\-:]{4,40};(?i:Secret=)(?P<s>[A-Za-z0-9+/]{43}=)", 0.95).before(70),
    tok("azure-sas-token", "Azure shared access signature (SAS) query", &["sv=20"], r"sv=20[0-9][0-9]-[0-9][0-9]-[0-9][0-9]&[A-Za-z0-9%&=.:\-]*?sig=(?P<s>[A-Za-z0-9%+/]{30,120}(?:%3D|=){0,2})", 0.85),
    tok("azure-ad-client-secret", "Microsoft Entra ID (Azure AD) client secret", &["Q~"], r"[A-Za-z0-9_~.\-]{3}[0-9]Q~[A-Za-z0-9_~.\-]{31,34}", 0.85).before(4).lead_may_show(),
    ctx("azure-devops-pat", "Azure DevOps personal access token (legacy 52-char)", &["devops"], assign!("devops", "[a-z2-7]{52}")),
    ctx("azure-openai-key", "Azure OpenAI API key", &["azure_openai", "azure-openai"], assign!(r"azure[_\-]openai", "[a-f0-9]{32}")),
    // ---- Other cloud providers ----------------------------------------------------------------
    tok("digitalocean-pat", "DigitalOcean personal access token", &["dop_v1_"], "dop_v1_[a-f0-9]{64}", 0.95),
    tok("digitalocean-oauth-token", "DigitalOcean OAuth access token", &["doo_v1_"], "doo_v1_[a-f0-9]{64}", 0.95),
    tok("digitalocean-refresh-token", "DigitalOcean OAuth refresh token", &["dor_v1_"], "dor_v1_[a-f0-9]{64}", 0.95),
    tok("alibaba-access-key-id", "Alibaba Cloud AccessKey id", &["LTAI"], "LTAI[A-Za-z0-9]{12,20}", 0.8),
    ctx("alibaba-access-key-secret", "Alibaba Cloud AccessKey secret", &["alibaba", "aliyun"], assign!("alibaba|aliyun", "[A-Za-z0-9]{30}")),
    tok("tencent-secret-id", "Tencent Cloud SecretId", &["AKID"], "AKID[A-Za-z0-9]{32}", 0.85),
    ctx("ibm-cloud-api-key", "IBM Cloud IAM API key", &["ibm"], assign!("ibm", r"[A-Za-z0-9_\-]{44}")),
    ctx("oracle-cloud-auth-token", "Oracle Cloud Infrastructure auth token", &["oci_", "oracle"], assign!("oci_|oracle", r"[A-Za-z0-9(){}\[\]:;.<>+\-_]{20}")).entropy(3.5),
    tok("scaleway-access-key", "Scaleway access key id", &["SCW"], "SCW[A-Z0-9]{17}", 0.75),
    ctx("scaleway-secret-key", "Scaleway secret key", &["scaleway", "scw_secret"], assign!("scaleway|scw_secret", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")),
    ctx("linode-token", "Linode / Akamai Cloud API token", &["linode"], assign!("linode", "[a-f0-9]{64}")),
    ctx("vultr-api-key", "Vultr API key", &["vultr"], assign!("vultr", "[A-Z0-9]{36}")),
    ctx("hetzner-api-token", "Hetzner Cloud API token", &["hetzner", "hcloud"], assign!("hetzner|hcloud", "[A-Za-z0-9]{64}")),
    tok("cloudflare-origin-ca-key", "Cloudflare Origin CA key", &["v1.0-"], "v1\\.0-[a-f0-9]{24}-[a-f0-9]{146}", 0.9),
    ctx("cloudflare-api-token", "Cloudflare API token", &["cloudflare", "cf_api"], assign!("cloudflare|cf_api", r"[A-Za-z0-9_\-]{40}")),
    ctx("cloudflare-global-api-key", "Cloudflare global API key", &["cloudflare", "cf_api"], assign!("cloudflare|cf_api", "[a-f0-9]{37}")),
    tok("databricks-token", "Databricks personal access token", &["dapi"], r"dapi[a-f0-9]{32}(?:-[0-9])?", 0.85),
    ctx("ovh-application-secret", "OVHcloud application secret", &["ovh"], assign!("ovh", "[A-Za-z0-9]{32}")),
    // ---- Version control / CI -----------------------------------------------------------------
    tok("github-pat", "GitHub personal access token (classic)", &["ghp_"], "ghp_[A-Za-z0-9]{36}", 0.95).check(Check::Crc32Base62),
    tok("github-oauth-token", "GitHub OAuth access token", &["gho_"], "gho_[A-Za-z0-9]{36}", 0.95).check(Check::Crc32Base62),
    tok("github-user-to-server-token", "GitHub App user-to-server token", &["ghu_"], "ghu_[A-Za-z0-9]{36}", 0.95).check(Check::Crc32Base62),
    tok("github-server-to-server-token", "GitHub App installation (server-to-server) token", &["ghs_"], "ghs_[A-Za-z0-9]{36}", 0.95).check(Check::Crc32Base62),
    tok("github-refresh-token", "GitHub App refresh token", &["ghr_"], "ghr_[A-Za-z0-9]{36}", 0.95).check(Check::Crc32Base62),
    tok("github-fine-grained-pat", "GitHub fine-grained personal access token (no public checksum)", &["github_pat_"], "github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}", 0.9),
    tok("gitlab-pat", "GitLab personal access token", &["glpat-"], r"glpat-[A-Za-z0-9_\-]{20}(?:[A-Za-z0-9_\-]{7,60}\.[0-9a-z]{2}\.[0-9a-z]{9})?", 0.95),
    tok("gitlab-oauth-app-secret", "GitLab OAuth application secret", &["gloas-"], r"gloas-[a-f0-9]{64}", 0.95),
    tok("gitlab-deploy-token", "GitLab deploy token", &["gldt-"], r"gldt-[A-Za-z0-9_\-]{20,80}", 0.95),
    tok("gitlab-runner-token", "GitLab runner authentication token", &["glrt-"], r"glrt-[A-Za-z0-9_\-]{20,80}", 0.95),
    tok("gitlab-runner-registration-token", "GitLab runner registration token", &["GR1348941"], r"GR1348941[A-Za-z0-9_\-]{20}", 0.95),
    tok("gitlab-ci-job-token", "GitLab CI/CD job token", &["glcbt-"], r"glcbt-[A-Za-z0-9_\-]{20,80}", 0.95),
    tok("gitlab-pipeline-trigger-token", "GitLab pipeline trigger token", &["glptt-"], r"glptt-[A-Za-z0-9_\-]{40}", 0.95),
    tok("gitlab-feed-token", "GitLab feed token", &["glft-"], r"glft-[A-Za-z0-9_\-]{20}", 0.9),
    tok("gitlab-incoming-mail-token", "GitLab incoming mail token", &["glimt-"], r"glimt-[A-Za-z0-9_\-]{25}", 0.9),
    tok("gitlab-agent-token", "GitLab agent for Kubernetes token", &["glagent-"], r"glagent-[A-Za-z0-9_\-]{50,80}", 0.95),
    tok("gitlab-scim-token", "GitLab SCIM OAuth token", &["glsoat-"], r"glsoat-[A-Za-z0-9_\-]{20}", 0.95),
    tok("gitlab-feature-flag-client-token", "GitLab feature flags client token", &["glffct-"], r"glffct-[A-Za-z0-9_\-]{20}", 0.9),
    tok("bitbucket-app-password", "Bitbucket app password", &["ATBB"], r"ATBB[A-Za-z0-9_=.\-]{32}", 0.9),
    tok("bitbucket-access-token", "Bitbucket repository/workspace access token", &["ATCTT3"], r"ATCTT3[A-Za-z0-9_=\-]{150,300}", 0.9),
    tok("atlassian-api-token", "Atlassian (Jira, Confluence) API token", &["ATATT3"], r"ATATT3[A-Za-z0-9_=\-]{150,300}", 0.9),
    ctx("gitea-token", "Gitea / Forgejo access token", &["gitea", "forgejo"], assign!("gitea|forgejo", "[a-f0-9]{40}")),
    tok("circleci-personal-token", "CircleCI personal API token", &["CCIPAT_"], "CCIPAT_[A-Za-z0-9]{22}_[a-f0-9]{40}", 0.95),
    ctx("travis-ci-token", "Travis CI API token", &["travis"], assign!("travis", r"[A-Za-z0-9_\-]{22}")),
    tok("buildkite-token", "Buildkite API access token", &["bkua_"], "bkua_[a-f0-9]{40}", 0.95),
    tok("sonar-token", "SonarQube / SonarCloud token", &["squ_", "sqp_", "sqa_"], "sq[upa]_[a-f0-9]{40}", 0.9),
    tok("harness-pat", "Harness personal/service account token", &["pat."], r"pat\.[A-Za-z0-9_\-]{22}\.[a-f0-9]{24}\.[A-Za-z0-9]{20}", 0.9),
    tok("octopus-deploy-api-key", "Octopus Deploy API key", &["API-"], "API-[A-Z0-9]{26}", 0.75).entropy(3.5),
    ctx("codecov-token", "Codecov upload token", &["codecov"], assign!("codecov", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")),
    ctx("snyk-token", "Snyk API token", &["snyk"], assign!("snyk", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")),
    // ---- Payments and commerce ----------------------------------------------------------------
    tok("stripe-secret-key", "Stripe live secret key", &["sk_live_"], "sk_live_[A-Za-z0-9]{24,99}", 0.97),
    tok("stripe-test-secret-key", "Stripe test-mode secret key", &["sk_test_"], "sk_test_[A-Za-z0-9]{24,99}", 0.75),
    tok("stripe-restricted-key", "Stripe live restricted key", &["rk_live_"], "rk_live_[A-Za-z0-9]{24,99}", 0.97),
    tok("stripe-test-restricted-key", "Stripe test-mode restricted key", &["rk_test_"], "rk_test_[A-Za-z0-9]{24,99}", 0.75),
    tok("stripe-publishable-key", "Stripe live publishable key (public, reported for inventory)", &["pk_live_"], "pk_live_[A-Za-z0-9]{24,99}", 0.5),
    tok("stripe-webhook-secret", "Stripe webhook signing secret", &["whsec_"], "whsec_[A-Za-z0-9+/]{32,64}", 0.95),
    tok("square-access-token", "Square access token", &["EAAA"], r"EAAA[A-Za-z0-9_\-]{60}", 0.85),
    tok("square-legacy-access-token", "Square legacy access token", &["sq0atp-"], r"sq0atp-[A-Za-z0-9_\-]{22}", 0.95),
    tok("square-oauth-secret", "Square OAuth application secret", &["sq0csp-"], r"sq0csp-[A-Za-z0-9_\-]{43}", 0.95),
    tok("braintree-access-token", "PayPal Braintree access token", &["access_token$"], r"access_token\$(?:production|sandbox)\$[0-9a-z]{16}\$[0-9a-f]{32}", 0.97),
    ctx("paypal-client-secret", "PayPal REST client secret", &["paypal"], assign!("paypal", r"E[A-Za-z0-9_\-]{79}")),
    ctx("adyen-api-key", "Adyen API key", &["adyen"], assign!("adyen", r"AQE[A-Za-z0-9+/=_\-.]{60,200}")),
    tok("razorpay-live-key", "Razorpay live key id", &["rzp_live_"], "rzp_live_[A-Za-z0-9]{14}", 0.85),
    tok("razorpay-test-key", "Razorpay test key id", &["rzp_test_"], "rzp_test_[A-Za-z0-9]{14}", 0.6),
    tok("flutterwave-secret-key", "Flutterwave secret key", &["FLWSECK"], r"FLWSECK(?:_TEST)?-[a-f0-9]{32}-X", 0.95),
    tok("flutterwave-encryption-key", "Flutterwave encryption key", &["FLWSECK_TEST"], "FLWSECK_TEST[a-f0-9]{12}", 0.85),
    tok("plaid-access-token", "Plaid access token", &["access-production-", "access-development-", "access-sandbox-"], "access-(?:production|development|sandbox)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", 0.9),
    tok("shopify-access-token", "Shopify Admin API access token", &["shpat_"], "shpat_[a-fA-F0-9]{32}", 0.95),
    tok("shopify-shared-secret", "Shopify app shared secret", &["shpss_"], "shpss_[a-fA-F0-9]{32}", 0.95),
    tok("shopify-custom-app-token", "Shopify custom app access token", &["shpca_"], "shpca_[a-fA-F0-9]{32}", 0.95),
    tok("shopify-private-app-password", "Shopify private app password", &["shppa_"], "shppa_[a-fA-F0-9]{32}", 0.95),
    tok("easypost-api-key", "EasyPost production API key", &["EZAK"], "EZAK[a-zA-Z0-9]{54}", 0.9),
    tok("easypost-test-api-key", "EasyPost test API key", &["EZTK"], "EZTK[a-zA-Z0-9]{54}", 0.75),
    tok("shippo-api-token", "Shippo API token", &["shippo_live_", "shippo_test_"], "shippo_(?:live|test)_[a-f0-9]{40}", 0.9),
    tok("duffel-api-token", "Duffel API token", &["duffel_live_", "duffel_test_"], r"duffel_(?:live|test)_[A-Za-z0-9_\-=]{43}", 0.9),
    ctx("coinbase-api-secret", "Coinbase API secret", &["coinbase"], assign!("coinbase", "[A-Za-z0-9]{32}")),
    ctx("gocardless-token", "GoCardless access token", &["gocardless"], assign!("gocardless", r"live_[A-Za-z0-9_\-=]{40}")),
    // ---- LLM and AI providers -----------------------------------------------------------------
    tok("openai-project-key", "OpenAI project API key", &["sk-proj-"], r"sk-proj-[A-Za-z0-9_\-]{40,250}", 0.95),
    tok("openai-service-account-key", "OpenAI service account key", &["sk-svcacct-"], r"sk-svcacct-[A-Za-z0-9_\-]{40,250}", 0.95),
    tok("openai-admin-key", "OpenAI admin key", &["sk-admin-"], r"sk-admin-[A-Za-z0-9_\-]{40,250}", 0.95),
    tok("openai-legacy-key", "OpenAI legacy user key (contains base64 of 'OpenAI')", &["sk-"], "sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}", 0.95),
    tok("anthropic-api-key", "Anthropic API key", &["sk-ant-api03-"], r"sk-ant-api03-[A-Za-z0-9_\-]{93}AA", 0.97),
    tok("anthropic-admin-key", "Anthropic admin API key", &["sk-ant-admin01-"], r"sk-ant-admin01-[A-Za-z0-9_\-]{93}AA", 0.97),
    tok("groq-api-key", "Groq API key", &["gsk_"], "gsk_[A-Za-z0-9]{52}", 0.95),
    tok("huggingface-token", "Hugging Face user access token", &["hf_"], "hf_[A-Za-z]{34}", 0.9).entropy(3.8),
    tok("huggingface-org-token", "Hugging Face organization API token", &["api_org_"], "api_org_[A-Za-z]{34}", 0.9),
    tok("replicate-api-token", "Replicate API token", &["r8_"], "r8_[A-Za-z0-9]{37}", 0.9),
    ctx("cohere-api-key", "Cohere API key", &["cohere", "co_api_key"], assign!("cohere|co_api_key", "[A-Za-z0-9]{40}")),
    ctx("mistral-api-key", "Mistral AI API key", &["mistral"], assign!("mistral", "[A-Za-z0-9]{32}")),
    tok("perplexity-api-key", "Perplexity API key", &["pplx-"], "pplx-[A-Za-z0-9]{40,64}", 0.9),
    tok("xai-api-key", "xAI (Grok) API key", &["xai-"], "xai-[A-Za-z0-9]{80}", 0.9),
    ctx("deepseek-api-key", "DeepSeek API key", &["deepseek"], assign!("deepseek", "sk-[a-f0-9]{32}")),
    tok("openrouter-api-key", "OpenRouter API key", &["sk-or-v1-"], "sk-or-v1-[a-f0-9]{64}", 0.95),
    ctx("together-api-key", "Together AI API key", &["together"], assign!("together", "[a-f0-9]{64}")),
    tok("fireworks-api-key", "Fireworks AI API key", &["fw_"], "fw_[A-Za-z0-9]{20,40}", 0.75),
    tok("anyscale-api-key", "Anyscale endpoints API key", &["esecret_"], "esecret_[A-Za-z0-9_]{20,60}", 0.85),
    ctx("deepgram-api-key", "Deepgram API key", &["deepgram"], assign!("deepgram", "[a-f0-9]{40}")),
    tok("elevenlabs-api-key", "ElevenLabs API key", &["sk_"], "sk_[a-f0-9]{48}", 0.8),
    tok("langsmith-api-key", "LangSmith API key", &["lsv2_pt_", "lsv2_sk_"], "lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}", 0.95),
    tok("langfuse-secret-key", "Langfuse secret key", &["sk-lf-"], "sk-lf-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", 0.95),
    tok("pinecone-api-key", "Pinecone API key", &["pcsk_"], "pcsk_[A-Za-z0-9]{5,6}_[A-Za-z0-9]{60,70}", 0.95),
    ctx("wandb-api-key", "Weights & Biases API key", &["wandb"], assign!("wandb", "[a-f0-9]{40}")),
    tok("cerebras-api-key", "Cerebras API key", &["csk-"], "csk-[a-z0-9]{48}", 0.9),
    tok("nvidia-api-key", "NVIDIA NIM / build.nvidia.com API key", &["nvapi-"], r"nvapi-[A-Za-z0-9_\-]{64}", 0.95),
    ctx("assemblyai-api-key", "AssemblyAI API key", &["assemblyai", "assembly_ai"], assign!("assembly_?ai", "[a-f0-9]{32}")),
    ctx("stability-api-key", "Stability AI API key", &["stability"], assign!("stability", "sk-[A-Za-z0-9]{48}")),
    ctx("ai21-api-key", "AI21 Labs API key", &["ai21"], assign!("ai21", "[A-Za-z0-9]{32}")),
    tok("tavily-api-key", "Tavily search API key", &["tvly-"], "tvly-(?:dev-|prod-)?[A-Za-z0-9]{32}", 0.9),
    tok("firecrawl-api-key", "Firecrawl API key", &["fc-"], "fc-[a-f0-9]{32}", 0.8),
    ctx("voyage-api-key", "Voyage AI API key", &["voyage"], assign!("voyage", r"pa-[A-Za-z0-9_\-]{43}")),
    ctx("clarifai-pat", "Clarifai personal access token", &["clarifai"], assign!("clarifai", "[a-f0-9]{32}")),
    // ---- Messaging and email ------------------------------------------------------------------
    tok("slack-bot-token", "Slack bot token", &["xoxb-"], "xoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24}", 0.95),
    tok("slack-user-token", "Slack user token", &["xoxp-"], "xoxp-[0-9]{10,13}-[0-9]{10,13}-[0-9]{10,13}-[a-f0-9]{32}", 0.95),
    tok("slack-app-token", "Slack app-level token", &["xapp-"], "xapp-[0-9]-[A-Z0-9]{9,12}-[0-9]{10,13}-[a-f0-9]{64}", 0.95),
    tok("slack-config-token", "Slack configuration access token", &["xoxe.xox"], "xoxe\\.xox[bp]-1-[A-Za-z0-9]{150,180}", 0.95),
    tok("slack-refresh-token", "Slack configuration refresh token", &["xoxe-1-"], "xoxe-1-[A-Za-z0-9]{140,160}", 0.95),
    tok("slack-legacy-token", "Slack legacy workspace/app token", &["xoxa-", "xoxr-", "xoxs-"], "xox[ars]-(?:[0-9]{8,13}-){1,3}[A-Za-z0-9]{20,64}", 0.9),
    tok("slack-webhook", "Slack incoming webhook URL", &["hooks.slack.com/"], "https://hooks\\.slack\\.com/(?:services|workflows|triggers)/T[A-Z0-9]{8,12}/[AB][A-Z0-9]{8,12}/[A-Za-z0-9]{24,64}", 0.95).before(8),
    ctx("discord-bot-token", "Discord bot token (first part is the base64 bot id)", &["discord"], assign!("discord", r"[MNO][A-Za-z0-9_\-]{23,27}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,40}")).check(Check::DiscordBot).confidence(0.85),
    tok("discord-webhook", "Discord webhook URL", &["/api/webhooks/"], r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]{17,20}/[A-Za-z0-9_\-]{60,80}", 0.95).before(40),
    tok("telegram-bot-token-url", "Telegram bot token in a Bot API URL", &["api.telegram.org/bot"], r"api\.telegram\.org/bot(?P<s>[0-9]{8,10}:[A-Za-z0-9_\-]{35})", 0.95),
    ctx("telegram-bot-token", "Telegram bot token", &["telegram"], assign!("telegram", r"[0-9]{8,10}:[A-Za-z0-9_\-]{35}")).confidence(0.9),
    tok("twilio-api-key", "Twilio API key SID", &["SK"], "SK[0-9a-fA-F]{32}", 0.7).entropy(3.2),
    tok("twilio-account-sid", "Twilio account SID (identifier, reported for inventory)", &["AC"], "AC[0-9a-f]{32}", 0.4).entropy(3.2),
    ctx("twilio-auth-token", "Twilio auth token", &["twilio"], assign!("twilio", "[a-f0-9]{32}")),
    tok("sendgrid-api-key", "SendGrid API key", &["SG."], r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}", 0.97),
    tok("mailgun-api-key", "Mailgun (legacy) API key", &["key-"], "key-[0-9a-f]{32}", 0.75).entropy(3.2),
    ctx("mailgun-private-key", "Mailgun private API key", &["mailgun"], assign!("mailgun", "[a-f0-9]{32}-[a-f0-9]{8}-[a-f0-9]{8}")),
    tok("mailchimp-api-key", "Mailchimp API key (with datacenter suffix)", &["-us"], "[0-9a-f]{32}-us[0-9]{1,2}", 0.85).before(32).entropy(3.2),
    tok("brevo-api-key", "Brevo (Sendinblue) API key", &["xkeysib-"], "xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}", 0.97),
    tok("brevo-smtp-key", "Brevo (Sendinblue) SMTP key", &["xsmtpsib-"], "xsmtpsib-[a-f0-9]{64}-[A-Za-z0-9]{16}", 0.97),
    ctx("postmark-server-token", "Postmark server token", &["postmark"], assign!("postmark", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")),
    ctx("mandrill-api-key", "Mandrill API key", &["mandrill"], assign!("mandrill", r"[A-Za-z0-9_\-]{22}")),
    ctx("mailjet-secret-key", "Mailjet API secret key", &["mailjet"], assign!("mailjet", "[a-f0-9]{32}")),
    tok("mailersend-api-token", "MailerSend API token", &["mlsn."], "mlsn\\.[a-f0-9]{64}", 0.95),
    tok("resend-api-key", "Resend API key", &["re_"], "re_[A-Za-z0-9]{8,10}_[A-Za-z0-9]{20,30}", 0.8).entropy(3.8),
    tok("teams-webhook", "Microsoft Teams incoming webhook URL", &[".webhook.office.com/webhookb2/"], r"https://[a-z0-9\-]{2,40}\.webhook\.office\.com/webhookb2/[A-Za-z0-9@\-]{36,90}/IncomingWebhook/[a-f0-9]{32}/[A-Za-z0-9\-]{36}(?:/[A-Za-z0-9_\-]{10,80})?", 0.95).before(50),
    ctx("vonage-api-secret", "Vonage (Nexmo) API secret", &["vonage", "nexmo"], assign!("vonage|nexmo", "[A-Za-z0-9]{16}")),
    ctx("messagebird-api-key", "MessageBird API key", &["messagebird"], assign!("messagebird", "[A-Za-z0-9]{25}")),
    ctx("pusher-secret", "Pusher Channels app secret", &["pusher"], assign!("pusher", "[a-f0-9]{20}")),
    ctx("zendesk-api-token", "Zendesk API token", &["zendesk"], assign!("zendesk", "[A-Za-z0-9]{40}")),
    ctx("intercom-access-token", "Intercom access token", &["intercom"], assign!("intercom", r"dG9rO[A-Za-z0-9+/=_\-]{50,70}")),
    // ---- Package registries -------------------------------------------------------------------
    tok("npm-token", "npm access token", &["npm_"], "npm_[A-Za-z0-9]{36}", 0.95).check(Check::Crc32Base62),
    tok("pypi-token", "PyPI API token (macaroon for pypi.org)", &["pypi-AgEIcHlwaS5vcmc"], r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,300}", 0.97).check(Check::PypiMacaroon),
    tok("pypi-test-token", "TestPyPI API token (macaroon for test.pypi.org)", &["pypi-AgENdGVzdC5weXBpLm9yZw"], r"pypi-AgENdGVzdC5weXBpLm9yZw[A-Za-z0-9_\-]{50,300}", 0.9).check(Check::PypiMacaroon),
    tok("rubygems-api-key", "RubyGems API key", &["rubygems_"], "rubygems_[a-f0-9]{48}", 0.95),
    tok("nuget-api-key", "NuGet API key", &["oy2"], "oy2[a-z0-9]{43}", 0.85),
    tok("docker-hub-pat", "Docker Hub personal access token", &["dckr_pat_"], r"dckr_pat_[A-Za-z0-9_\-]{27}", 0.95),
    tok("docker-hub-org-token", "Docker Hub organization access token", &["dckr_oat_"], r"dckr_oat_[A-Za-z0-9_\-]{32}", 0.95),
    tok("crates-io-token", "crates.io API token", &["cio"], "cio[A-Za-z0-9]{32}", 0.85).entropy(3.5),
    tok("jfrog-api-key", "JFrog Artifactory API key", &["AKCp"], "AKCp[A-Za-z0-9]{69}", 0.9),
    tok("jfrog-identity-token", "JFrog identity / reference token (base64 'reftkn:01:')", &["cmVmdGtuOjAxOj"], "cmVmdGtuOjAxOj[A-Za-z0-9]{50,80}", 0.9),
    tok("clojars-token", "Clojars deploy token", &["CLOJARS_"], "CLOJARS_[a-z0-9]{60}", 0.95),
    ctx("packagist-token", "Private Packagist token", &["packagist"], assign!("packagist", "packagist_[a-z]{3}_[a-f0-9]{68}")).confidence(0.9),
    ctx("sonatype-password", "Sonatype / Maven Central token password", &["sonatype", "ossrh"], assign!("sonatype|ossrh", r"[A-Za-z0-9+/]{44}")),
    // ---- Infrastructure and developer SaaS ----------------------------------------------------
    tok("vault-service-token", "HashiCorp Vault service token", &["hvs."], r"hvs\.[A-Za-z0-9_\-]{24,300}", 0.95),
    tok("vault-batch-token", "HashiCorp Vault batch token", &["hvb."], r"hvb\.[A-Za-z0-9_\-]{24,400}", 0.95),
    tok("vault-recovery-token", "HashiCorp Vault recovery token", &["hvr."], r"hvr\.[A-Za-z0-9_\-]{24,300}", 0.95),
    ctx("vault-legacy-token", "HashiCorp Vault legacy service token", &["vault"], assign!("vault", r"s\.[A-Za-z0-9]{24}")),
    tok("terraform-cloud-token", "Terraform Cloud / HCP Terraform API token", &[".atlasv1."], r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_\-=]{60,70}", 0.95).before(14).lead_may_show(),
    tok("doppler-personal-token", "Doppler personal token", &["dp.pt."], "dp\\.pt\\.[A-Za-z0-9]{43}", 0.95),
    tok("doppler-service-token", "Doppler service token", &["dp.st."], "dp\\.st\\.(?:[a-z0-9_\\-]{2,35}\\.)?[A-Za-z0-9]{40,44}", 0.95),
    tok("doppler-cli-token", "Doppler CLI token", &["dp.ct."], "dp\\.ct\\.[A-Za-z0-9]{40,44}", 0.95),
    tok("doppler-service-account-token", "Doppler service account token", &["dp.sa."], "dp\\.sa\\.[A-Za-z0-9]{40,44}", 0.95),
    tok("doppler-scim-token", "Doppler SCIM token", &["dp.scim."], "dp\\.scim\\.[A-Za-z0-9]{40,44}", 0.95),
    tok("doppler-audit-token", "Doppler audit token", &["dp.audit."], "dp\\.audit\\.[A-Za-z0-9]{40,44}", 0.95),
    tok("pulumi-access-token", "Pulumi access token", &["pul-"], "pul-[a-f0-9]{40}", 0.95),
    tok("linear-api-key", "Linear API key", &["lin_api_"], "lin_api_[A-Za-z0-9]{40}", 0.95),
    tok("linear-oauth-token", "Linear OAuth access token", &["lin_oauth_"], "lin_oauth_[a-f0-9]{64}", 0.95),
    tok("notion-integration-token", "Notion internal integration token (legacy)", &["secret_"], "secret_[A-Za-z0-9]{43}", 0.85),
    tok("notion-token", "Notion integration token", &["ntn_"], "ntn_[0-9]{11}[A-Za-z0-9]{35}", 0.95),
    tok("airtable-pat", "Airtable personal access token", &["pat"], r"pat[A-Za-z0-9]{14}\.[a-f0-9]{64}", 0.95),
    ctx("datadog-api-key", "Datadog API key", &["datadog", "dd_api_key"], assign!("datadog|dd_api_key", "[a-f0-9]{32}")),
    ctx("datadog-app-key", "Datadog application key", &["dd_app_key", "datadog_app"], assign!("dd_app_key|datadog_app", "[a-f0-9]{40}")),
    tok("newrelic-user-key", "New Relic user API key", &["NRAK-"], "NRAK-[A-Z0-9]{27}", 0.95),
    tok("newrelic-insert-key", "New Relic insights insert key", &["NRII-"], r"NRII-[A-Za-z0-9_\-]{32}", 0.95),
    tok("newrelic-browser-key", "New Relic browser API key", &["NRJS-"], "NRJS-[a-f0-9]{19}", 0.9),
    tok("newrelic-rest-key", "New Relic REST API key", &["NRRA-"], "NRRA-[a-f0-9]{42}", 0.95),
    tok("newrelic-license-key", "New Relic ingest license key", &["NRAL"], "[a-f0-9]{36}NRAL", 0.9).before(36),
    tok("sentry-org-token", "Sentry organization auth token", &["sntrys_"], r"sntrys_eyJ[A-Za-z0-9+/=_\-]{60,300}", 0.95),
    tok("sentry-user-token", "Sentry user auth token", &["sntryu_"], "sntryu_[a-f0-9]{64}", 0.95),
    tok("grafana-cloud-token", "Grafana Cloud access policy token", &["glc_"], r"glc_[A-Za-z0-9+/]{32,400}={0,2}", 0.95),
    tok("grafana-service-account-token", "Grafana service account token", &["glsa_"], "glsa_[A-Za-z0-9]{32}_[a-f0-9]{8}", 0.95),
    tok("grafana-api-key", "Grafana legacy API key (base64 JSON with k/n/id)", &["eyJrIjoi"], r"eyJrIjoi[A-Za-z0-9+/]{70,400}={0,2}", 0.9),
    tok("planetscale-token", "PlanetScale service token", &["pscale_tkn_"], r"pscale_tkn_[A-Za-z0-9_\-.]{43}", 0.95),
    tok("planetscale-password", "PlanetScale database password", &["pscale_pw_"], r"pscale_pw_[A-Za-z0-9_\-.]{43}", 0.95),
    tok("planetscale-oauth-token", "PlanetScale OAuth token", &["pscale_oauth_"], r"pscale_oauth_[A-Za-z0-9_\-.]{32,64}", 0.95),
    tok("supabase-access-token", "Supabase management API access token", &["sbp_"], "sbp_[a-f0-9]{40}", 0.95),
    tok("supabase-secret-key", "Supabase secret API key", &["sb_secret_"], r"sb_secret_[A-Za-z0-9_\-]{31}", 0.95),
    ctx("vercel-token", "Vercel access token", &["vercel"], assign!("vercel", "[A-Za-z0-9]{24}")),
    tok("netlify-pat", "Netlify personal access token", &["nfp_"], "nfp_[A-Za-z0-9]{36}", 0.9),
    ctx("netlify-legacy-token", "Netlify access token (legacy format)", &["netlify"], assign!("netlify", r"[A-Za-z0-9_\-]{43,45}")),
    tok("heroku-api-key", "Heroku platform API key", &["HRKU-"], r"HRKU-[A-Za-z0-9_\-]{60}", 0.95),
    ctx("heroku-legacy-api-key", "Heroku API key (legacy UUID format)", &["heroku"], assign!("heroku", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")),
    tok("flyio-token", "Fly.io access token", &["fo1_"], r"fo1_[A-Za-z0-9_\-]{43}", 0.95),
    tok("flyio-macaroon", "Fly.io macaroon token", &["FlyV1 fm"], r"FlyV1 fm[12][ar]?_[A-Za-z0-9+/=,_\-]{100,}", 0.95).window(2050),
    tok("postman-api-key", "Postman API key", &["PMAK-"], "PMAK-[a-f0-9]{24}-[a-f0-9]{34}", 0.97),
    tok("onepassword-service-account-token", "1Password service account token", &["ops_eyJ"], r"ops_eyJ[A-Za-z0-9+/=_\-]{100,}", 0.95),
    tok("onepassword-secret-key", "1Password account secret key", &["A3-"], "A3-[A-Z0-9]{6}-[A-Z0-9]{6}-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}", 0.9),
    ctx("okta-api-token", "Okta API token", &["okta"], assign!("okta", r"00[A-Za-z0-9_\-]{40}")),
    ctx("auth0-client-secret", "Auth0 client secret", &["auth0"], assign!("auth0", r"[A-Za-z0-9_\-]{64}")),
    tok("contentful-pat", "Contentful personal access token", &["CFPAT-"], r"CFPAT-[A-Za-z0-9_\-]{43}", 0.95),
    tok("mapbox-secret-token", "Mapbox secret access token", &["sk.eyJ"], r"sk\.eyJ[A-Za-z0-9_\-]{50,300}\.[A-Za-z0-9_\-]{20,40}", 0.95),
    tok("dropbox-access-token", "Dropbox short-lived access token", &["sl."], r"sl\.(?:u\.)?[A-Za-z0-9_\-]{130,}", 0.85).window(1420),
    tok("figma-pat", "Figma personal access token", &["figd_"], r"figd_[A-Za-z0-9_\-]{40}", 0.95),
    tok("hubspot-private-app-token", "HubSpot private app access token", &["pat-na1-", "pat-eu1-"], "pat-(?:na|eu)1-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", 0.95),
    tok("typeform-pat", "Typeform personal access token", &["tfp_"], r"tfp_[A-Za-z0-9_\-.=]{59}", 0.9),
    tok("frameio-token", "Frame.io developer token", &["fio-u-"], r"fio-u-[A-Za-z0-9_\-=]{64}", 0.95),
    tok("readme-api-key", "ReadMe API key", &["rdme_"], "rdme_[a-z0-9]{70}", 0.95),
    tok("prefect-api-key", "Prefect Cloud API key", &["pnu_"], "pnu_[A-Za-z0-9]{36}", 0.95),
    tok("dynatrace-token", "Dynatrace API token", &["dt0c01."], r"dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}", 0.97),
    ctx("launchdarkly-key", "LaunchDarkly SDK / API key", &["launchdarkly"], assign!("launchdarkly", "(?:api|sdk|mob)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")).confidence(0.9),
    ctx("algolia-admin-key", "Algolia admin API key", &["algolia"], assign!("algolia", "[a-f0-9]{32}")),
    tok("render-api-key", "Render API key", &["rnd_"], "rnd_[A-Za-z0-9]{32}", 0.9),
    ctx("railway-token", "Railway API token", &["railway"], assign!("railway", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")),
    ctx("ngrok-authtoken", "ngrok authtoken", &["ngrok"], assign!("ngrok", "[0-9][A-Za-z0-9]{26}_[A-Za-z0-9]{21}")),
    tok("tailscale-key", "Tailscale auth/API/OAuth key", &["tskey-"], "tskey-(?:api|auth|client|scim|webhook)-[A-Za-z0-9]{10,20}-[A-Za-z0-9]{20,40}", 0.95),
    tok("infracost-api-key", "Infracost API key", &["ico-"], "ico-[A-Za-z0-9]{32}", 0.85),
    tok("scalingo-api-token", "Scalingo API token", &["tk-us-"], r"tk-us-[A-Za-z0-9_\-]{48}", 0.9),
    tok("salesforce-access-token", "Salesforce session / access token (org id + !)", &["00D"], r"00D[A-Za-z0-9]{12,15}![A-Za-z0-9_.]{90,110}", 0.9),
    ctx("splunk-hec-token", "Splunk HTTP Event Collector token", &["splunk"], assign!("splunk", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")),
    ctx("pagerduty-api-key", "PagerDuty REST API key", &["pagerduty"], assign!("pagerduty", r"u\+[A-Za-z0-9_+\-]{18}")),
    ctx("opsgenie-api-key", "Opsgenie API key", &["opsgenie"], assign!("opsgenie", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")),
    ctx("segment-write-key", "Segment write key", &["segment"], assign!("segment", "[A-Za-z0-9]{32}")),
    ctx("mongodb-atlas-private-key", "MongoDB Atlas API private key", &["atlas"], assign!("atlas", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")),
    ctx("confluent-api-secret", "Confluent Cloud API secret", &["confluent"], assign!("confluent", r"[A-Za-z0-9+/]{64}")),
    ctx("snowflake-password", "Snowflake account password", &["snowflake"], assign!("snowflake", r"[^\s'\x22`]{12,}")),
    ctx("asana-pat", "Asana personal access token", &["asana"], assign!("asana", "[0-9]/[0-9]{10,20}(?::|/)[A-Za-z0-9]{32}")),
    ctx("jira-api-token", "Jira API token (legacy 24-char)", &["jira"], assign!("jira", "[A-Za-z0-9]{24}")),
    ctx("twitter-bearer-token", "X / Twitter app bearer token", &["twitter"], assign!("twitter", "AAAAAAAAAAAAAAAAAAAAA[A-Za-z0-9%]{30,120}")).confidence(0.9).entropy(0.0),
    ctx("twitter-api-secret", "X / Twitter API secret", &["twitter"], assign!("twitter", "[A-Za-z0-9]{50}")),
    tok("facebook-access-token", "Meta (Facebook / Instagram) Graph API access token", &["EAA"], "EAA[B-Z][A-Za-z0-9]{90,250}", 0.75).entropy(3.5),
    ctx("facebook-app-secret", "Meta app secret", &["facebook"], assign!("facebook", "[a-f0-9]{32}")),
    ctx("linkedin-client-secret", "LinkedIn client secret", &["linkedin"], assign!("linkedin", "[A-Za-z0-9]{16}")),
    ctx("spotify-client-secret", "Spotify client secret", &["spotify"], assign!("spotify", "[a-f0-9]{32}")),
    ctx("twitch-api-token", "Twitch API token", &["twitch"], assign!("twitch", "[a-z0-9]{30}")),
    ctx("zoom-client-secret", "Zoom client secret", &["zoom"], assign!("zoom", "[A-Za-z0-9]{32}")),
    ctx("box-client-secret", "Box client secret", &["box_client", "box-client"], assign!("box[_\\-]client", "[A-Za-z0-9]{32}")),
    ctx("kubernetes-token", "Kubernetes service account token assigned to a kube… name", &["kube"], assign!("kube", r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*")).check(Check::Jwt).confidence(0.9).entropy(0.0).window(14200),
    // ---- Connection strings and URLs with credentials -----------------------------------------
    ctx("postgres-connection-string", "PostgreSQL URI with password", &["postgres"], r"(?i:postgres(?:ql)?)://[^\s:/@'\x22]+:(?P<s>[^\s:/@'\x22]+)@[^\s'\x22]", ).confidence(0.9).entropy(0.0),
    ctx("mysql-connection-string", "MySQL / MariaDB URI with password", &["mysql", "mariadb"], r"(?i:mysql|mariadb)(?:\+[a-z]{2,12})?://[^\s:/@'\x22]+:(?P<s>[^\s:/@'\x22]+)@[^\s'\x22]").confidence(0.9).entropy(0.0),
    ctx("mongodb-connection-string", "MongoDB (mongodb / mongodb+srv) URI with password", &["mongodb"], r"(?i:mongodb)(?:\+srv)?://[^\s:/@'\x22]+:(?P<s>[^\s:/@'\x22]+)@[^\s'\x22]").confidence(0.9).entropy(0.0),
    ctx("redis-connection-string", "Redis URI with password", &["redis"], r"(?i:rediss?)://[^\s:/@'\x22]*:(?P<s>[^\s:/@'\x22]+)@[^\s'\x22]").confidence(0.9).entropy(0.0),
    ctx("amqp-connection-string", "AMQP (RabbitMQ) URI with password", &["amqp"], r"(?i:amqps?)://[^\s:/@'\x22]+:(?P<s>[^\s:/@'\x22]+)@[^\s'\x22]").confidence(0.9).entropy(0.0),
    ctx("mssql-connection-string", "SQL Server URI with password", &["sqlserver", "mssql"], r"(?i:sqlserver|mssql)(?:\+[a-z]{2,12})?://[^\s:/@'\x22]+:(?P<s>[^\s:/@'\x22]+)@[^\s'\x22]").confidence(0.9).entropy(0.0),
    ctx("ldap-connection-string", "LDAP URI with bind password", &["ldap"], r"(?i:ldaps?)://[^\s:/@'\x22]+:(?P<s>[^\s:/@'\x22]+)@[^\s'\x22]").confidence(0.85).entropy(0.0),
    ctx("ftp-connection-string", "FTP / SFTP URI with password", &["ftp"], r"(?i:s?ftps?)://[^\s:/@'\x22]+:(?P<s>[^\s:/@'\x22]+)@[^\s'\x22]").confidence(0.85).entropy(0.0).before(1),
    ctx("smtp-connection-string", "SMTP URI with password", &["smtp"], r"(?i:smtps?)://[^\s:/@'\x22]+:(?P<s>[^\s:/@'\x22]+)@[^\s'\x22]").confidence(0.85).entropy(0.0),
    ctx("jdbc-password", "JDBC URL with a password parameter", &["jdbc:"], r"(?i:jdbc:)[a-z0-9]{2,20}:[^\s'\x22]*?[;?&](?i:password|pwd)=(?P<s>[^;&\s'\x22]+)").confidence(0.85).entropy(0.0).window(450),
    ctx("url-basic-auth", "Credentials embedded in a URL (scheme://user:password@host)", &["://"], r"[A-Za-z][A-Za-z0-9+.\-]{1,20}://[^\s:/@'\x22]+:(?P<s>[^\s:/@'\x22]+)@[A-Za-z0-9\-]").confidence(0.75).entropy(0.0).before(22),
    ctx("curl-basic-auth", "curl -u user:password on a command line", &["curl"], r#"(?i:curl)\s[^\n]*?\s(?:-u|--user)\s{1,4}["']?[^\s:'"]+:(?P<s>[^\s'"]+)"#).confidence(0.75).entropy(0.0).window(420),
    tok("authorization-basic", "HTTP Basic authorization header value (decodes to user:password)", &["basic "], r"(?i:basic)\s{1,4}(?P<s>[A-Za-z0-9+/]{8,400}={0,2})", 0.85).check(Check::BasicAuth),
    // ---- Generic assignments (last: most specific rules above win) ----------------------------
    ctx("authorization-bearer", "HTTP bearer token", &["bearer"], r"(?i:bearer)\s{1,4}(?P<s>[A-Za-z0-9_\-.~+/]{16,}={0,2})").confidence(0.65).entropy(3.0).window(2050).generic(),
    ctx("generic-password", "Password assigned in code or configuration", &["password", "passwd", "passphrase", "pwd"], r#"(?i:password|passwd|passphrase|pwd)[[:word:].\-]{0,24}?["']?\s{0,4}(?:=>|:=|[:=])\s{0,4}["']?(?P<s>[^\s"'`,;<>]{6,})"#).confidence(0.6).entropy(2.3).generic(),
    ctx("generic-api-key", "API key assigned in code or configuration", &["apikey", "api_key", "api-key", "access_key", "access-key", "accesskey"], r#"(?i:api[_\-]?key|access[_\-]?key)[[:word:].\-]{0,24}?["']?\s{0,4}(?:=>|:=|[:=])\s{0,4}["']?(?P<s>[^\s"'`,;<>]{12,})"#).confidence(0.6).generic(),
    ctx("generic-secret", "Secret assigned in code or configuration", &["secret"], r#"(?i:secret)[[:word:].\-]{0,24}?["']?\s{0,4}(?:=>|:=|[:=])\s{0,4}["']?(?P<s>[^\s"'`,;<>]{12,})"#).confidence(0.6).generic(),
    ctx("generic-token", "Token assigned in code or configuration", &["token"], r#"(?i:token)[[:word:].\-]{0,24}?["']?\s{0,4}(?:=>|:=|[:=])\s{0,4}["']?(?P<s>[^\s"'`,;<>]{16,})"#).confidence(0.55).window(2100).generic(),
    ctx("generic-credential", "Credential assigned in code or configuration", &["credential", "private_key", "private-key", "client_secret"], r#"(?i:credential|private[_\-]key|client_secret)[[:word:].\-]{0,24}?["']?\s{0,4}(?:=>|:=|[:=])\s{0,4}["']?(?P<s>[^\s"'`,;<>]{12,})"#).confidence(0.55).generic(),
];
