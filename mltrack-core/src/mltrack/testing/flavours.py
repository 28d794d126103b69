"""A conformance suite every ``Flavour`` runs (in the style of LangChain's standard tests).

Subclass under a ``Test*`` name and implement ``flavour``, ``make_model`` and
``input_example``; the suite saves, loads and serves the model and checks parity,
plain-MLflow loadability, requirements and signature enforcement::

    class TestSklearnFlavour(FlavourConformance):
        def flavour(self): return SklearnFlavour()
        def make_model(self): return LinearRegression().fit(X, y)
        def input_example(self): return pd.DataFrame(X[:3], columns=[...])

Override ``bad_input`` to give an input the signature must refuse (default: the
example with its first column renamed), and ``assert_same`` for non-array outputs.
Standard tests may not be overridden silently (``@overrides_standard_test("why")``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mltrack.models.flavours import Flavour
from mltrack.testing.sinks import overrides_standard_test

# mlflow, pandas, numpy and pytest are imported inside the checks that use them: importing the suite loads none of
# them.

__all__ = ["FlavourConformance", "overrides_standard_test"]


class FlavourConformance:
    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in vars(cls).items():
            overrides = name.startswith("test_") and hasattr(FlavourConformance, name)
            if overrides and not hasattr(value, "__mltrack_override__"):
                raise TypeError(
                    f"{cls.__name__}.{name} overrides a standard flavour test; "
                    "mark it with @overrides_standard_test('reason') if that is deliberate"
                )

    # -- to implement --------------------------------------------------------------------

    def flavour(self) -> Flavour:
        raise NotImplementedError

    def make_model(self) -> Any:
        raise NotImplementedError

    def input_example(self) -> Any:
        raise NotImplementedError

    def bad_input(self) -> Any:
        """An input the model's signature must refuse (None: skip that test)."""
        import pandas as pd

        example = self.input_example()
        if isinstance(example, pd.DataFrame) and len(example.columns):
            return example.rename(columns={example.columns[0]: "not_a_column_of_the_signature"})
        return None

    def assert_same(self, expected: Any, got: Any) -> None:
        import numpy as np
        import pandas as pd

        def as_array(value: Any) -> Any:
            if isinstance(value, (pd.DataFrame, pd.Series)):
                return value.to_numpy()
            return np.asarray(value)

        np.testing.assert_allclose(as_array(got), as_array(expected), rtol=1e-5, atol=1e-6)

    # -- helpers ----------------------------------------------------------------------------

    def native_predict(self, model: Any, inputs: Any) -> Any:
        return self.flavour().predict_for_signature(model, inputs)

    def saved(self, tmp_path: Path) -> tuple[Any, Path]:
        from mlflow.models import infer_signature

        flavour, model, example = self.flavour(), self.make_model(), self.input_example()
        path = tmp_path / "model"
        signature = infer_signature(example, self.native_predict(model, example))
        flavour.save(
            model,
            path,
            signature=signature,
            input_example=example,
            pip_requirements=flavour.requirements(model),
            metadata={"mltrack_flavour": flavour.name},
        )
        return model, path

    # -- the standard tests ---------------------------------------------------------------

    def test_can_handle_its_model(self) -> None:
        flavour = self.flavour()
        assert flavour.name
        assert flavour.can_handle(self.make_model())
        assert not flavour.can_handle(object())

    def test_save_load_predict_parity(self, tmp_path: Path) -> None:
        model, path = self.saved(tmp_path)
        loaded = self.flavour().load(path)
        example = self.input_example()
        self.assert_same(self.native_predict(model, example), self.native_predict(loaded, example))

    def test_predictor_parity(self, tmp_path: Path) -> None:
        model, path = self.saved(tmp_path)
        predictor = self.flavour().load_predictor(path)
        example = self.input_example()
        self.assert_same(self.native_predict(model, example), predictor.predict(example))

    def test_plain_mlflow_loads_it(self, tmp_path: Path) -> None:
        import mlflow.pyfunc

        model, path = self.saved(tmp_path)
        example = self.input_example()
        self.assert_same(self.native_predict(model, example), mlflow.pyfunc.load_model(str(path)).predict(example))

    def test_requirements_are_recorded(self, tmp_path: Path) -> None:
        model, path = self.saved(tmp_path)
        requirements = self.flavour().requirements(model)
        assert requirements, "a flavour must name what loading needs"
        written = (path / "requirements.txt").read_text()
        for requirement in requirements:
            assert requirement in written

    def test_signature_is_enforced(self, tmp_path: Path) -> None:
        import mlflow.pyfunc
        import pytest
        from mlflow.exceptions import MlflowException

        bad = self.bad_input()
        if bad is None:
            pytest.skip("no input that the signature must refuse")
        _, path = self.saved(tmp_path)
        with pytest.raises(MlflowException):
            mlflow.pyfunc.load_model(str(path)).predict(bad)
