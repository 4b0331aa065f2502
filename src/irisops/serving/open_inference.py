"""The Open Inference Protocol (KServe V2) over REST: its JSON shapes and their tensors.

Kept apart from the routes (routes/v2.py) so the rules are plain functions: a request
becomes one float32 matrix of n rows by 4 features, or a 400 naming what is wrong;
the model's answer becomes two output tensors, `label` (BYTES, one class name per
row) and `probabilities` (FP32, n by 3, columns in `class_names` order).

Tensors come as JSON (`data`, flat or nested by row) or, as Triton's clients send
them by default, in the binary tensor data extension: the body is a JSON header of
`Inference-Header-Content-Length` bytes followed by raw little-endian tensors, each
input saying its size in `parameters.binary_data_size`. Outputs come back binary
when asked (`binary_data` on an output, or `binary_data_output` on the request).
"""

import struct
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Annotated, Any, Literal, cast

import numpy as np
import numpy.typing as npt
import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    NonNegativeInt,
    Tag,
    ValidationError,
    WithJsonSchema,
)

from irisops import __version__
from irisops.runtime import LoadedModel
from irisops.serving.errors import ApiError
from irisops.serving.schemas import FEATURES, SEED_EXAMPLE
from irisops.serving.validation import refusal

SERVER = "irisops"
EXTENSIONS = ["binary_tensor_data"]
PLATFORM = "onnxruntime_onnx"  # Triton's name for an ONNX model run by onnxruntime
INPUT = "input"
LABEL = "label"
PROBABILITIES = "probabilities"
OUTPUTS = (LABEL, PROBABILITIES)
HEADER_LENGTH = "inference-header-content-length"
# The model takes float32; float64 is converted (a JSON number has no type of its own).
DATATYPES: dict[str, np.dtype[Any]] = {"FP32": np.dtype("<f4"), "FP64": np.dtype("<f8")}
SHAPE_HINT = f"[n, {FEATURES}]: n rows of {FEATURES} features"


class Protocol(BaseModel):
    # Strict like /predict ("5.1", true and null are not numbers, NaN is not finite);
    # unknown fields are ignored, as other V2 servers do, so any V2 client is understood.
    model_config = ConfigDict(strict=True, allow_inf_nan=False)


def _layout(data: Any) -> str:
    return "rows" if isinstance(data, list) and data and isinstance(data[0], list) else "flat"


# Flat, or nested one level by row. The discriminator makes pydantic report the errors
# of the layout the client used only; the schema it documents is the plain anyOf.
TensorData = Annotated[
    Annotated[list[float], Tag("flat")] | Annotated[list[list[float]], Tag("rows")],
    Discriminator(_layout),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "array", "items": {"type": "number"}},
                {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
            ],
            "description": "Row-major values, flat or as one list per row.",
        }
    ),
]
LAYOUTS = {"flat", "rows"}


class RequestInput(Protocol):
    name: str = Field(examples=[INPUT])
    shape: list[NonNegativeInt] = Field(examples=[[1, FEATURES]])
    datatype: Literal["FP32", "FP64"]
    parameters: dict[str, JsonValue] | None = None
    data: TensorData | None = Field(
        None, description="Absent when the tensor is sent binary (parameters.binary_data_size)."
    )


class RequestOutput(Protocol):
    name: str = Field(examples=[PROBABILITIES])
    parameters: dict[str, JsonValue] | None = None


class InferenceRequest(Protocol):
    id: str | None = None
    parameters: dict[str, JsonValue] | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "42",
                    "inputs": [
                        {
                            "name": INPUT,
                            "shape": [1, FEATURES],
                            "datatype": "FP32",
                            "data": SEED_EXAMPLE,
                        }
                    ],
                }
            ]
        }
    )


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, JsonValue] | None = None
    data: list[str] | list[float] | None = None


class InferenceResponse(BaseModel):
    model_name: str = Field(examples=["iris-classifier"])
    model_version: str = Field(examples=["3"])
    id: str | None = None
    outputs: list[ResponseOutput]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str = Field(examples=["iris-classifier"])
    versions: list[str] = Field(examples=[["3"]])
    platform: str = Field(examples=[PLATFORM])
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: dict[str, list[str]] = Field(
        description="irisops' addition: the class of each probability column, and the features."
    )


class ServerMetadata(BaseModel):
    name: str = Field(examples=[SERVER])
    version: str
    extensions: list[str]


class ServerLive(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class ProtocolError(BaseModel):
    error: str = Field(
        examples=["input 'input' has shape [1, 3]; the model takes [n, 4]: n rows of 4 features"]
    )


# --- requests ------------------------------------------------------------------------


def bad(message: str) -> ApiError:
    """The protocol answers every malformed request with 400 and {"error": message}."""
    return ApiError(400, message)


def split_body(raw: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON header and the binary tensor data after it (none without the header)."""
    if header_length is None:
        return raw, b""
    if not header_length.isdigit() or int(header_length) > len(raw):
        raise bad(
            f"Inference-Header-Content-Length: {header_length!r} is not a length within "
            f"the {len(raw)}-byte body"
        )
    return raw[: int(header_length)], raw[int(header_length) :]


def parse(header: bytes) -> InferenceRequest:
    try:
        return InferenceRequest.model_validate_json(header)
    except ValidationError as exc:
        # The layout tags are pydantic's, not the client's: data[2][1], not data.rows[2][1].
        errors = [
            {**e, "loc": tuple(p for i, p in enumerate(e["loc"]) if not _is_tag(e["loc"], i))}
            for e in exc.errors()
        ]
        raise bad(refusal(errors).detail) from None


def _is_tag(loc: tuple[int | str, ...], index: int) -> bool:
    return index > 0 and loc[index - 1] == "data" and loc[index] in LAYOUTS


def features(request: InferenceRequest, binary: bytes, max_rows: int) -> npt.NDArray[np.float32]:
    """The request's one input as an n x 4 float32 matrix, or a 400 naming the problem."""
    if len(request.inputs) != 1:
        raise bad(f"the model takes one input, {INPUT!r}; the request has {len(request.inputs)}")
    tensor = request.inputs[0]
    if tensor.name != INPUT:
        raise bad(f"unknown input {tensor.name!r}: the model's input is {INPUT!r}")
    if len(tensor.shape) != 2 or tensor.shape[1] != FEATURES:
        raise bad(f"input {INPUT!r} has shape {tensor.shape}; the model takes {SHAPE_HINT}")
    rows = tensor.shape[0]
    if rows > max_rows:
        raise ApiError(
            413,
            f"{rows} rows exceed the limit of {max_rows} per request "
            "(IRISOPS_MAX_BATCH_ROWS); split the batch",
        )
    size = (tensor.parameters or {}).get("binary_data_size")
    if size is None:
        matrix = _from_json(tensor.data, rows)
        if binary:
            raise bad(f"{len(binary)} bytes of binary data follow the JSON, but no input has any")
    else:
        matrix = _from_binary(tensor, size, binary, rows)
    finite = np.isfinite(matrix)
    if not finite.all():
        row, column = (int(i) for i in np.argwhere(~finite)[0])
        raise bad(f"input {INPUT!r} row {row}, feature {column}: not a finite FP32 number")
    return matrix


def _from_json(data: list[float] | list[list[float]] | None, rows: int) -> npt.NDArray[np.float32]:
    if data is None:
        raise bad(f"input {INPUT!r} has no data (nor parameters.binary_data_size)")
    values = rows * FEATURES
    flat: Iterable[float]
    if _layout(data) == "rows":
        nested = cast(list[list[float]], data)
        if len(nested) != rows:
            raise bad(f"input {INPUT!r} has {len(nested)} rows of data; its shape says {rows}")
        for index, row in enumerate(nested):
            if len(row) != FEATURES:
                raise bad(f"input {INPUT!r} data[{index}] has {len(row)} values, not {FEATURES}")
        flat = chain.from_iterable(nested)
    else:
        flat = cast(list[float], data)
        if len(flat) != values:
            raise bad(
                f"input {INPUT!r} has {len(flat)} values; shape [{rows}, {FEATURES}] needs {values}"
            )
    return np.fromiter(flat, np.float32, values).reshape(rows, FEATURES)


def _from_binary(
    tensor: RequestInput, size: JsonValue, binary: bytes, rows: int
) -> npt.NDArray[np.float32]:
    if tensor.data is not None:
        raise bad(f"input {INPUT!r} has both data and parameters.binary_data_size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise bad(f"input {INPUT!r}: parameters.binary_data_size must be a byte count")
    dtype = DATATYPES[tensor.datatype]
    needed = rows * FEATURES * dtype.itemsize
    if size != needed or len(binary) != size:
        raise bad(
            f"input {INPUT!r} of shape [{rows}, {FEATURES}] {tensor.datatype} needs {needed} "
            f"bytes of binary data; it declares {size} and the body has {len(binary)} after "
            "the JSON header (Inference-Header-Content-Length)"
        )
    return np.frombuffer(binary, dtype).astype(np.float32).reshape(rows, FEATURES)


def requested_outputs(request: InferenceRequest) -> dict[str, bool]:
    """Output name -> whether to send it binary: all outputs unless some are named."""
    default = _flag(request.parameters, "binary_data_output", False)
    if request.outputs is None:
        return dict.fromkeys(OUTPUTS, default)
    wanted = {}
    for output in request.outputs:
        if output.name not in OUTPUTS:
            raise bad(f"unknown output {output.name!r}: the model's outputs are {list(OUTPUTS)}")
        wanted[output.name] = _flag(output.parameters, "binary_data", default)
    return wanted


def _flag(parameters: dict[str, JsonValue] | None, name: str, default: bool) -> bool:
    value = (parameters or {}).get(name, default)
    if not isinstance(value, bool):
        raise bad(f"parameters.{name} must be true or false, not {value!r}")
    return value


# --- answers -----------------------------------------------------------------------------


def answer(
    model: LoadedModel,
    name: str,
    request_id: str | None,
    outputs: dict[str, bool],
    probabilities: npt.NDArray[np.float32],
    class_ids: npt.NDArray[np.intp],
) -> tuple[bytes, int | None]:
    """The response body, and the length of its JSON header if binary tensors follow it."""
    names = model.metadata.class_names
    rows = len(class_ids)
    tensors: list[dict[str, Any]] = []
    binary: list[bytes] = []
    for output, as_binary in outputs.items():
        if output == LABEL:
            tensor: dict[str, Any] = {"name": LABEL, "datatype": "BYTES", "shape": [rows]}
            ids = class_ids.tolist()
            payload = _bytes_tensor(names, ids) if as_binary else None
            data: Any = [names[i] for i in ids]
        else:
            shape = [rows, len(names)]
            tensor = {"name": PROBABILITIES, "datatype": "FP32", "shape": shape}
            payload = probabilities.astype("<f4").tobytes() if as_binary else None
            data = probabilities.reshape(-1)
        if payload is None:
            tensor["data"] = data
        else:
            tensor["parameters"] = {"binary_data_size": len(payload)}
            binary.append(payload)
        tensors.append(tensor)
    body: dict[str, Any] = {"model_name": name, "model_version": model.version}
    if request_id is not None:
        body["id"] = request_id
    body["outputs"] = tensors
    header = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    if not binary:
        return header, None
    return header + b"".join(binary), len(header)


def _bytes_tensor(names: Sequence[str], ids: list[int]) -> bytes:
    """BYTES in the binary extension: each element as a little-endian u32 length, then it."""
    encoded = [struct.pack("<I", len(item)) + item for item in (name.encode() for name in names)]
    return b"".join([encoded[i] for i in ids])


def model_metadata(model: LoadedModel, name: str) -> ModelMetadata:
    classes = len(model.metadata.class_names)
    return ModelMetadata(
        name=name,
        versions=[model.version],
        platform=PLATFORM,
        inputs=[TensorMetadata(name=INPUT, datatype="FP32", shape=[-1, FEATURES])],
        outputs=[
            TensorMetadata(name=LABEL, datatype="BYTES", shape=[-1]),
            TensorMetadata(name=PROBABILITIES, datatype="FP32", shape=[-1, classes]),
        ],
        parameters={
            "class_names": model.metadata.class_names,
            "feature_names": model.metadata.feature_names,
        },
    )


def server_metadata() -> ServerMetadata:
    return ServerMetadata(name=SERVER, version=__version__, extensions=EXTENSIONS)
