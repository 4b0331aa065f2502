"""Dependencies shared by the routes."""

from typing import Annotated

from fastapi import Depends, Request

from irisops.config import Settings
from irisops.runtime import LoadedModel
from irisops.serving.errors import ApiError
from irisops.serving.store import ModelStore


def get_store(request: Request) -> ModelStore:
    store: ModelStore = request.app.state.store
    return store


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_model(store: Annotated[ModelStore, Depends(get_store)]) -> LoadedModel:
    """The model for this whole request: read once, so a hot swap cannot split a response."""
    model = store.model
    if model is None:
        raise ApiError(503, store.not_ready_reason)
    return model


StoreDep = Annotated[ModelStore, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelDep = Annotated[LoadedModel, Depends(get_model)]
