"""Fuzz properties against the engines chosen with --engine (see README: Fuzzing).

    pytest --pyargs gradspec.fuzz --engine torch --fuzz-examples 500

Fixtures come from gradspec's pytest plugin: the adapter (one test id per engine and
device, float64 only, as finite differences need), hypothesis settings built from
--fuzz-examples and --fuzz-database, and the staging folder for failing draws.
"""

from __future__ import annotations

import pytest
from gradspec.fuzz import kinks, properties, sequences, view_sequences
from gradspec.running.interpreter import effective_capabilities


def needs(adapter, *capabilities: str, ops: frozenset = frozenset()) -> None:
    """Skip, as not applicable, a property that calls what the engine does not declare (or what that provides:
    grad or backward gives derivatives, which the finite-difference properties need), or ops it lacks."""
    missing = sorted(set(capabilities) - effective_capabilities(type(adapter)))
    lacking = adapter.lacking_ops()
    missing += [f"op:{op} ({lacking[op]})" for op in sorted(ops & set(lacking))]
    if missing:
        pytest.skip(f"not applicable: {adapter.name} lacks {', '.join(missing)}")


def test_first_order_gradients_match_finite_differences(gradspec_fuzz_engine, gradspec_fuzz_adapter,
                                                        gradspec_fuzz_settings, gradspec_fuzz_staging):
    needs(gradspec_fuzz_adapter, "derivatives")
    properties.run(properties.first_order, gradspec_fuzz_adapter, gradspec_fuzz_settings, gradspec_fuzz_staging,
                   "first-order", engine=gradspec_fuzz_engine[0].name)


def test_first_order_gradients_through_views_and_indexing_match_finite_differences(
        gradspec_fuzz_engine, gradspec_fuzz_adapter, gradspec_fuzz_settings, gradspec_fuzz_staging):
    needs(gradspec_fuzz_adapter, "derivatives", "view_ops")
    properties.run(properties.first_order, gradspec_fuzz_adapter, gradspec_fuzz_settings, gradspec_fuzz_staging,
                   "first-order-indexing", engine=gradspec_fuzz_engine[0].name, indexing=True)


def test_hessian_vector_products_match_finite_differences_of_the_gradient(gradspec_fuzz_engine, gradspec_fuzz_adapter,
                                                                         gradspec_fuzz_settings, gradspec_fuzz_staging):
    needs(gradspec_fuzz_adapter, "derivatives", "create_graph")
    properties.run(properties.second_order, gradspec_fuzz_adapter, gradspec_fuzz_settings, gradspec_fuzz_staging,
                   "second-order", engine=gradspec_fuzz_engine[0].name)


def test_sequences_of_autograd_calls_behave_as_on_the_reference_engine(gradspec_fuzz_engine, gradspec_fuzz_adapter,
                                                                       gradspec_fuzz_settings, gradspec_fuzz_staging):
    if gradspec_fuzz_adapter.name == "reference":
        pytest.skip("the reference engine is the judge of this property")
    needs(gradspec_fuzz_adapter, "derivatives", ops=sequences.NEEDED_OPS)  # draws what both engines have
    properties.run_sequences(gradspec_fuzz_adapter, gradspec_fuzz_settings, gradspec_fuzz_staging,
                             engine=gradspec_fuzz_engine[0].name)


def test_views_and_in_place_updates_behave_as_on_the_reference_engine(gradspec_fuzz_engine, gradspec_fuzz_adapter,
                                                                      gradspec_fuzz_settings, gradspec_fuzz_staging):
    if gradspec_fuzz_adapter.name == "reference":
        pytest.skip("the reference engine is the judge of this property")
    needs(gradspec_fuzz_adapter, *view_sequences.VIEW_CAPABILITIES, ops=sequences.NEEDED_OPS)
    strategy = view_sequences.view_sequences(exclude=properties.excluded_ops(gradspec_fuzz_adapter))
    properties.run_sequences(gradspec_fuzz_adapter, gradspec_fuzz_settings, gradspec_fuzz_staging,
                             engine=gradspec_fuzz_engine[0].name, strategy=strategy,
                             stem="view-sequence")


def test_gradients_exactly_at_kinks_follow_the_rule_book(gradspec_fuzz_engine, gradspec_fuzz_adapter,
                                                        gradspec_fuzz_settings, gradspec_fuzz_staging):
    needs(gradspec_fuzz_adapter, "derivatives", "torch_kink_conventions")
    if not kinks.drawable(properties.excluded_ops(gradspec_fuzz_adapter)):
        pytest.skip(f"not applicable: {gradspec_fuzz_adapter.name} lacks every op with a kink")
    properties.run_kinks(gradspec_fuzz_adapter, gradspec_fuzz_settings, gradspec_fuzz_staging,
                         engine=gradspec_fuzz_engine[0].name)


def test_a_custom_function_with_the_ops_own_derivative_changes_no_derivative(
        gradspec_fuzz_engine, gradspec_fuzz_adapter, gradspec_fuzz_settings, gradspec_fuzz_staging):
    needs(gradspec_fuzz_adapter, "derivatives", "custom_function")  # Hessian-vector products too with create_graph
    properties.run_wrapping(gradspec_fuzz_adapter, gradspec_fuzz_settings, gradspec_fuzz_staging,
                            engine=gradspec_fuzz_engine[0].name)
