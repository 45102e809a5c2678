"""Fuzz properties against the engines chosen with --engine (see README: Fuzzing).

    pytest --pyargs gradspec.fuzz --engine torch --fuzz-examples 500

Fixtures come from gradspec's pytest plugin: the adapter (one test id per engine and
device, float64 only, as finite differences need), hypothesis settings built from
--fuzz-examples and --fuzz-database, and the staging folder for failing draws.
"""

from __future__ import annotations

import pytest
from gradspec.fuzz import properties, sequences, view_sequences


def needs(adapter, *capabilities: str) -> None:
    """Skip, as not applicable, a property that calls what the engine does not declare."""
    missing = sorted(set(capabilities) - set(adapter.capabilities))
    if missing:
        pytest.skip(f"not applicable: {adapter.name} lacks {', '.join(missing)}")


def test_first_order_gradients_match_finite_differences(gradspec_fuzz_engine, gradspec_fuzz_adapter,
                                                        gradspec_fuzz_settings, gradspec_fuzz_staging):
    needs(gradspec_fuzz_adapter, "grad")
    properties.run(properties.first_order, gradspec_fuzz_adapter, gradspec_fuzz_settings, gradspec_fuzz_staging,
                   "first-order", engine=gradspec_fuzz_engine[0].name)


def test_first_order_gradients_through_views_and_indexing_match_finite_differences(
        gradspec_fuzz_engine, gradspec_fuzz_adapter, gradspec_fuzz_settings, gradspec_fuzz_staging):
    needs(gradspec_fuzz_adapter, "grad", "view_ops")
    properties.run(properties.first_order, gradspec_fuzz_adapter, gradspec_fuzz_settings, gradspec_fuzz_staging,
                   "first-order-indexing", engine=gradspec_fuzz_engine[0].name, indexing=True)


def test_hessian_vector_products_match_finite_differences_of_the_gradient(gradspec_fuzz_engine, gradspec_fuzz_adapter,
                                                                         gradspec_fuzz_settings, gradspec_fuzz_staging):
    needs(gradspec_fuzz_adapter, "grad", "create_graph")
    properties.run(properties.second_order, gradspec_fuzz_adapter, gradspec_fuzz_settings, gradspec_fuzz_staging,
                   "second-order", engine=gradspec_fuzz_engine[0].name)


def test_sequences_of_autograd_calls_behave_as_on_the_reference_engine(gradspec_fuzz_engine, gradspec_fuzz_adapter,
                                                                       gradspec_fuzz_settings, gradspec_fuzz_staging):
    if gradspec_fuzz_adapter.name == "reference":
        pytest.skip("the reference engine is the judge of this property")
    needs(gradspec_fuzz_adapter, *sequences.CAPABILITIES)
    properties.run_sequences(gradspec_fuzz_adapter, gradspec_fuzz_settings, gradspec_fuzz_staging,
                             engine=gradspec_fuzz_engine[0].name)


def test_views_and_in_place_updates_behave_as_on_the_reference_engine(gradspec_fuzz_engine, gradspec_fuzz_adapter,
                                                                      gradspec_fuzz_settings, gradspec_fuzz_staging):
    if gradspec_fuzz_adapter.name == "reference":
        pytest.skip("the reference engine is the judge of this property")
    needs(gradspec_fuzz_adapter, *view_sequences.VIEW_CAPABILITIES)
    properties.run_sequences(gradspec_fuzz_adapter, gradspec_fuzz_settings, gradspec_fuzz_staging,
                             engine=gradspec_fuzz_engine[0].name, strategy=view_sequences.view_sequences(),
                             stem="view-sequence")


def test_gradients_exactly_at_kinks_follow_the_rule_book(gradspec_fuzz_engine, gradspec_fuzz_adapter,
                                                        gradspec_fuzz_settings, gradspec_fuzz_staging):
    needs(gradspec_fuzz_adapter, "grad", "torch_kink_conventions")
    properties.run_kinks(gradspec_fuzz_adapter, gradspec_fuzz_settings, gradspec_fuzz_staging,
                         engine=gradspec_fuzz_engine[0].name)


def test_a_custom_function_with_the_ops_own_derivative_changes_no_derivative(
        gradspec_fuzz_engine, gradspec_fuzz_adapter, gradspec_fuzz_settings, gradspec_fuzz_staging):
    needs(gradspec_fuzz_adapter, "grad", "create_graph", "custom_function")
    properties.run_wrapping(gradspec_fuzz_adapter, gradspec_fuzz_settings, gradspec_fuzz_staging,
                            engine=gradspec_fuzz_engine[0].name)
