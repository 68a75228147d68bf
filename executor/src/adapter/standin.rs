//! A harmless stand-in chain for demos and tests: the "client" just sleeps.

use super::{ChainAdapter, ContainerImage, NodePaths, Probe, Program, RenderError, RenderedFile, RenderedUnit};
use novacula_core::executor::{ChainSupport, ClientSupport};
use novacula_core::spec::{ClientSpec, NodeSpec, NodeType};
use std::collections::BTreeMap;

pub struct StandIn;

impl StandIn {
    /// A running stand-in node named `name`: chain `demo`, one `main` client.
    pub fn spec(name: &str) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            chain: "demo".into(),
            network: "local".into(),
            node_type: NodeType::Full,
            clients: vec![ClientSpec {
                role: "main".into(),
                client: "standin".into(),
                version: "1.0.0".into(),
                image: None,
                config_overrides: BTreeMap::new(),
                resources: Default::default(),
                ports: BTreeMap::new(),
            }],
            storage: vec![],
            sidecars: vec![],
            desired_state: novacula_core::DesiredState::Running,
            restart_generation: 0,
            p2p_exposure: Default::default(),
        }
    }
}

/// The operator runs the stand-in in a small image that has a shell.
pub const STANDIN_IMAGE: &str = "busybox:1.36";

impl ChainAdapter for StandIn {
    fn chain(&self) -> &'static str {
        "demo"
    }

    fn support(&self) -> ChainSupport {
        ChainSupport {
            chain: self.chain().into(),
            networks: vec!["local".into()],
            node_types: vec![NodeType::Full],
            clients: vec![ClientSupport { role: "main".into(), client: "standin".into(), ..Default::default() }],
            network_defaults: vec![],
        }
    }

    fn render_client(&self, spec: &NodeSpec, c: &ClientSpec, _: &NodePaths) -> Result<RenderedUnit, RenderError> {
        let script = format!("echo stand-in node {} client {} {} started; exec sleep 2147483647", spec.name, c.client, c.version);
        Ok(RenderedUnit {
            program: Program::Shell,
            args: vec!["-c".into(), script],
            env: BTreeMap::new(),
            secret_env: BTreeMap::new(),
            files: vec![RenderedFile::text("standin.conf", format!("{:?}\n", c.config_overrides))],
            probe: Probe::Alive,
            needs: vec![],
            ports: vec![],
            stop_grace_secs: super::DEFAULT_STOP_GRACE_SECS,
            volumes: vec![],
        })
    }

    fn image(&self, _: &str, client: &str, _: &str) -> Option<ContainerImage> {
        (client == "standin").then(|| ContainerImage { reference: STANDIN_IMAGE.into(), command: vec!["/bin/sh".into()], writable_root: false })
    }
}
