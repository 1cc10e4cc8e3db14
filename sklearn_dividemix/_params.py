"""skorch-style ``module__*`` / ``optimizer__*`` parameters on an estimator.

scikit-learn's ``BaseEstimator`` only knows the parameters named in
``__init__``'s signature. DivideMixClassifier also accepts the prefixed
keywords that skorch routes to the module and the optimizer; this mixin makes
``get_params``, ``set_params`` and therefore ``clone`` and ``GridSearchCV``
see them.
"""

from __future__ import annotations

__all__ = ["RoutedParamsMixin"]


class RoutedParamsMixin:
    """Expose the keywords ``__init__`` stored beyond its named parameters."""

    def _routed_params(self) -> dict:
        # Every keyword that __init__ stored beyond the named parameters, so
        # that a misspelt one (no ``__``) is reported by fit, not ignored.
        named = set(self._get_param_names())
        return {
            k: v
            for k, v in vars(self).items()
            if k not in named and not k.startswith("_") and not k.endswith("_")
        }

    def get_params(self, deep=True):
        """Get parameters, the routed ``module__*``-style ones included.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of contained estimators.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        params = super().get_params(deep=deep)
        params.update(self._routed_params())
        return params

    def set_params(self, **params):
        """Set parameters, the routed ``module__*``-style ones included.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : object
            Estimator instance.
        """
        # Whatever get_params returns is settable; new names need a ``__``.
        extra = self._routed_params()
        routed = {k: params.pop(k) for k in list(params) if "__" in k or k in extra}
        for name, value in routed.items():
            setattr(self, name, value)
        return super().set_params(**params)
