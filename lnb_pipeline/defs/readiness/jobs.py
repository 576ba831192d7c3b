"""Going live: `integration_readiness` (the report, read-only) and `shopify_setup` (the one-time,
opt-in creation of what the report finds missing and the project can create itself). Neither has a
schedule: both are launched by hand, from the Jobs page."""


import dagster as dg

from lnb_pipeline.defs.orders.settings import OrderFlowSettings
from lnb_pipeline.defs.pool_waits import in_process_executor_naming_pool_holders
from lnb_pipeline.defs.readiness.assets import GROUP
from lnb_pipeline.defs.readiness.custom_ids import (
    CREATED,
    PROBLEMS,
    SetupOutcome,
    ensure_definition,
    wanted_definitions,
)
from lnb_pipeline.defs.shopify.resources import ShopifyResource

SETUP_TABLE = dg.TableSchema(columns=[
    dg.TableColumn("owner", "string", "The Shopify records the definition is on"),
    dg.TableColumn("metafield", "string", "namespace.key"),
    dg.TableColumn("outcome", "string", "created, already there, another type (not changed), refused, not needed"),
    dg.TableColumn("detail", "string"),
])

integration_readiness = dg.define_asset_job(
    name="integration_readiness",
    selection=dg.AssetSelection.groups(GROUP),
    description="Check the Shopify shop and the LNB account before going live: a go / no-go table with what "
                "fixes each point. Reads only.",
    executor_def=in_process_executor_naming_pool_holders,
)


def _record(outcome: SetupOutcome) -> dg.TableRecord:
    return dg.TableRecord({"owner": outcome.owner_type.lower() + "s", "metafield": outcome.metafield,
                           "outcome": outcome.outcome, "detail": outcome.detail})


@dg.op(out=dg.Out(dg.Nothing))
def create_custom_id_definitions(context: dg.OpExecutionContext, shopify: ShopifyResource,
                                 order_flow_settings: OrderFlowSettings) -> None:
    """The customer and order metafield definitions of type id (SHOPIFY_CUSTOMER_METAFIELD,
    SHOPIFY_ORDER_METAFIELD), created in Shopify when missing. An existing definition is never changed:
    one of another type under the same key is reported and the run fails, naming it."""
    settings = order_flow_settings.order_settings()
    client = shopify.get_client(context.log)
    outcomes = [ensure_definition(client, wanted, context.log) for wanted in wanted_definitions(
        settings.metafield, settings.order_metafield, customer_needed=settings.customer_match == "metafield")]
    metadata = {"definitions": dg.MetadataValue.table([_record(outcome) for outcome in outcomes], SETUP_TABLE),
                "created": sum(outcome.outcome == CREATED for outcome in outcomes)}
    problems = [outcome for outcome in outcomes if outcome.outcome in PROBLEMS]
    if problems:
        raise dg.Failure(
            description="Custom id definitions missing: " + "; ".join(
                f"{problem.metafield} on {problem.owner_type.lower()}s: {problem.outcome} ({problem.detail})"
                for problem in problems),
            metadata=metadata, allow_retries=False)
    context.add_output_metadata(metadata)


@dg.job(
    executor_def=in_process_executor_naming_pool_holders,
    description="One-time Shopify setup: create the custom id definitions the report finds missing (customer "
                "retailer reference, order reference). Never changes or deletes a definition; running it again "
                "changes nothing.",
)
def shopify_setup() -> None:
    create_custom_id_definitions()
