from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ProviderInfo(_message.Message):
    __slots__ = ("name", "kind", "currencies", "supports_partial_refunds", "supports_webhooks", "sandbox")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CURRENCIES_FIELD_NUMBER: _ClassVar[int]
    SUPPORTS_PARTIAL_REFUNDS_FIELD_NUMBER: _ClassVar[int]
    SUPPORTS_WEBHOOKS_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    currencies: _containers.RepeatedScalarFieldContainer[str]
    supports_partial_refunds: bool
    supports_webhooks: bool
    sandbox: bool
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., currencies: _Optional[_Iterable[str]] = ..., supports_partial_refunds: _Optional[bool] = ..., supports_webhooks: _Optional[bool] = ..., sandbox: _Optional[bool] = ...) -> None: ...
