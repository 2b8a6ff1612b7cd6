//! Prints the `WebhookPipeline` CRD as YAML: `cargo run -p hookline-operator
//! --bin crdgen > crds/webhookpipelines.hookline.dev.yaml`.

fn main() -> anyhow::Result<()> {
    print!("{}", hookline_operator::crd::yaml()?);
    Ok(())
}
