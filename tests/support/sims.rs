//! The provider simulators as the test harness sees them: the one place where the harness
//! names the simulators' module, their sandbox credentials and how they are started.

use simulators::Simulator;

pub use simulators::{CompagoSim, D24Sim, PayMongoSim, RunningSandbox};

/// The Compago payment method the simulator's fixtures treat as active.
pub const COMPAGO_ACTIVE_METHOD: &str = simulators::compago::fixtures::ACTIVE_METHOD;

/// The credential keys of an account of `kind` that talks to the simulators as if they
/// were the real provider.
pub fn credentials(kind: &str) -> String {
    use simulators::{
        COMPAGO_SANDBOX_API_KEY, D24_SANDBOX_LOGIN, D24_SANDBOX_SECRET,
        PAYMONGO_SANDBOX_SECRET_KEY, PAYMONGO_SANDBOX_WEBHOOK_SECRET,
    };
    match kind {
        "compago" => format!("api_key = \"{COMPAGO_SANDBOX_API_KEY}\""),
        "d24" => format!("login = \"{D24_SANDBOX_LOGIN}\"\nsecret_key = \"{D24_SANDBOX_SECRET}\""),
        "paymongo" => format!(
            "secret_key = \"{PAYMONGO_SANDBOX_SECRET_KEY}\"\nwebhook_secret = \"{PAYMONGO_SANDBOX_WEBHOOK_SECRET}\""
        ),
        other => panic!("no simulator for provider kind {other:?}"),
    }
}

/// The D24 login with a signature secret the simulator does not know.
pub fn d24_wrong_secret() -> String {
    format!(
        "login = \"{}\"\nsecret_key = \"not-the-secret\"",
        simulators::D24_SANDBOX_LOGIN
    )
}

pub fn compago(running: &RunningSandbox) -> &CompagoSim {
    &running.sandbox.compago
}

pub fn d24(running: &RunningSandbox) -> &D24Sim {
    &running.sandbox.d24
}

pub fn paymongo(running: &RunningSandbox) -> &PayMongoSim {
    &running.sandbox.paymongo
}

/// Simulators a test starts beside the gateway, on a listener of their own.
#[derive(Debug)]
pub struct OwnSims(RunningSandbox);

impl OwnSims {
    pub async fn start() -> Self {
        Self(
            simulators::start("127.0.0.1:0".parse().expect("an address"))
                .await
                .expect("the simulators start"),
        )
    }

    pub fn url(&self) -> String {
        self.0.url()
    }

    /// The base URL of an account of `kind` on these simulators.
    pub fn base_url(&self, kind: &str) -> String {
        let kind = match kind {
            "compago" => Simulator::Compago,
            "d24" => Simulator::D24,
            "paymongo" => Simulator::PayMongo,
            other => panic!("no simulator for provider kind {other:?}"),
        };
        self.0.base_url(kind)
    }

    pub fn compago(&self) -> &CompagoSim {
        compago(&self.0)
    }

    pub fn d24(&self) -> &D24Sim {
        d24(&self.0)
    }

    pub fn paymongo(&self) -> &PayMongoSim {
        paymongo(&self.0)
    }
}
