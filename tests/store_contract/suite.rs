//! `contract_suite!`: every contract test of the topic files, instantiated for one backend.

/// Instantiates every contract test for one backend in the module it is called from, as
/// `<backend>::<test>`: `contract_suite!(name)` for a constructor
/// `crate::backends::name() -> Backend`.
macro_rules! contract_suite {
    ($backend:ident) => {
        contract_suite!($backend;
            stores: [
                actors::events_keep_their_actor_and_note,
                actors::a_refund_waiting_for_approval_holds_its_amount,
                events::insert_then_get_returns_every_field,
                events::creation_event_has_the_masked_snapshot_and_no_previous_status,
                events::stale_version_conflicts_and_writes_nothing,
                events::events_are_written_only_for_visible_changes,
                events::forbidden_status_changes_are_refused,
                events::events_after_filters_by_scope_in_sequence_order,
                events::latest_event_is_the_current_state,
                guard::guard_allows_up_to_the_payment_and_refuses_beyond,
                guard::failed_and_canceled_refunds_release_their_amount,
                guard::guard_never_adds_mixed_currencies,
                guard::concurrent_inserts_never_exceed_the_payment,
                guard::guard_counts_what_the_provider_reports_once,
                guard::concurrent_inserts_count_what_the_provider_reports,
                idempotency::claim_request_answers_every_state,
                idempotency::expired_claim_with_nothing_recorded_is_taken_over,
                idempotency::expired_claim_with_a_refund_is_done,
                idempotency::release_forgets_only_unrecorded_claims,
                idempotency::concurrent_claims_of_one_key_have_one_owner,
                idempotency::a_linked_refund_is_replaced_by_an_error_only_once_failed,
                idempotency::a_canceled_refund_is_replaced_by_its_error,
                idempotency::a_refusal_and_its_error_are_one_transaction,
                idempotency::insert_requires_an_open_claim_on_its_key,
                listing::list_applies_each_filter_within_the_tenant,
                listing::list_pages_by_keyset_without_gaps_or_duplicates,
                listing::claim_due_leases_due_refunds,
                listing::find_by_provider_refund_id_is_scoped_to_the_account,
                listing::held_amount_adds_up_holding_refunds_of_one_payment,
                listing::refunds_of_payment_lists_one_payment_at_one_account,
                listing::count_by_status_counts_every_refund,
                listing::ping_answers,
            ];
            reopens: [
                reopen::secret_is_created_once_and_survives_reopen,
                reopen::reopen_keeps_everything_and_sequences_continue,
            ]
        );
    };
    ($backend:ident;
        stores: [$($store_topic:ident :: $store_test:ident),* $(,)?];
        reopens: [$($reopen_topic:ident :: $reopen_test:ident),* $(,)?]) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $store_test() {
                let backend = crate::backends::$backend().await;
                crate::$store_topic::$store_test(backend.open().await).await;
                backend.close().await;
            }
        )*
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $reopen_test() {
                let backend = crate::backends::$backend().await;
                crate::$reopen_topic::$reopen_test(&backend).await;
                backend.close().await;
            }
        )*
    };
}
