import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from refunds.v1 import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BankAccountType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BANK_ACCOUNT_TYPE_UNSPECIFIED: _ClassVar[BankAccountType]
    BANK_ACCOUNT_TYPE_SAVING: _ClassVar[BankAccountType]
    BANK_ACCOUNT_TYPE_CHECKING: _ClassVar[BankAccountType]

class RefundReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REFUND_REASON_UNSPECIFIED: _ClassVar[RefundReason]
    REFUND_REASON_DUPLICATE: _ClassVar[RefundReason]
    REFUND_REASON_FRAUDULENT: _ClassVar[RefundReason]
    REFUND_REASON_REQUESTED_BY_CUSTOMER: _ClassVar[RefundReason]
    REFUND_REASON_OTHER: _ClassVar[RefundReason]

class RefundStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REFUND_STATUS_UNSPECIFIED: _ClassVar[RefundStatus]
    REFUND_STATUS_PENDING: _ClassVar[RefundStatus]
    REFUND_STATUS_PROCESSING: _ClassVar[RefundStatus]
    REFUND_STATUS_SUCCEEDED: _ClassVar[RefundStatus]
    REFUND_STATUS_FAILED: _ClassVar[RefundStatus]
    REFUND_STATUS_CANCELED: _ClassVar[RefundStatus]
    REFUND_STATUS_REQUIRES_REVIEW: _ClassVar[RefundStatus]
    REFUND_STATUS_REQUIRES_APPROVAL: _ClassVar[RefundStatus]
BANK_ACCOUNT_TYPE_UNSPECIFIED: BankAccountType
BANK_ACCOUNT_TYPE_SAVING: BankAccountType
BANK_ACCOUNT_TYPE_CHECKING: BankAccountType
REFUND_REASON_UNSPECIFIED: RefundReason
REFUND_REASON_DUPLICATE: RefundReason
REFUND_REASON_FRAUDULENT: RefundReason
REFUND_REASON_REQUESTED_BY_CUSTOMER: RefundReason
REFUND_REASON_OTHER: RefundReason
REFUND_STATUS_UNSPECIFIED: RefundStatus
REFUND_STATUS_PENDING: RefundStatus
REFUND_STATUS_PROCESSING: RefundStatus
REFUND_STATUS_SUCCEEDED: RefundStatus
REFUND_STATUS_FAILED: RefundStatus
REFUND_STATUS_CANCELED: RefundStatus
REFUND_STATUS_REQUIRES_REVIEW: RefundStatus
REFUND_STATUS_REQUIRES_APPROVAL: RefundStatus

class Refund(_message.Message):
    __slots__ = ("id", "request_id", "provider", "payment", "amount", "status", "provider_refund_id", "provider_status", "reason", "description", "metadata", "bank_account", "failure", "create_time", "update_time")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_REFUND_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    BANK_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    request_id: str
    provider: str
    payment: PaymentReference
    amount: _money_pb2.Money
    status: RefundStatus
    provider_refund_id: str
    provider_status: str
    reason: RefundReason
    description: str
    metadata: _containers.ScalarMap[str, str]
    bank_account: BankAccount
    failure: RefundFailure
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., request_id: _Optional[str] = ..., provider: _Optional[str] = ..., payment: _Optional[_Union[PaymentReference, _Mapping]] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., status: _Optional[_Union[RefundStatus, str]] = ..., provider_refund_id: _Optional[str] = ..., provider_status: _Optional[str] = ..., reason: _Optional[_Union[RefundReason, str]] = ..., description: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., bank_account: _Optional[_Union[BankAccount, _Mapping]] = ..., failure: _Optional[_Union[RefundFailure, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PaymentReference(_message.Message):
    __slots__ = ("payment_id", "payment_method_id", "invoice_id")
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_METHOD_ID_FIELD_NUMBER: _ClassVar[int]
    INVOICE_ID_FIELD_NUMBER: _ClassVar[int]
    payment_id: str
    payment_method_id: str
    invoice_id: str
    def __init__(self, payment_id: _Optional[str] = ..., payment_method_id: _Optional[str] = ..., invoice_id: _Optional[str] = ...) -> None: ...

class BankAccount(_message.Message):
    __slots__ = ("beneficiary", "bank_code", "branch", "account_number", "account_type")
    BENEFICIARY_FIELD_NUMBER: _ClassVar[int]
    BANK_CODE_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_TYPE_FIELD_NUMBER: _ClassVar[int]
    beneficiary: str
    bank_code: str
    branch: str
    account_number: str
    account_type: BankAccountType
    def __init__(self, beneficiary: _Optional[str] = ..., bank_code: _Optional[str] = ..., branch: _Optional[str] = ..., account_number: _Optional[str] = ..., account_type: _Optional[_Union[BankAccountType, str]] = ...) -> None: ...

class RefundFailure(_message.Message):
    __slots__ = ("code", "message", "provider_code", "provider_message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CODE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    provider_code: str
    provider_message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., provider_code: _Optional[str] = ..., provider_message: _Optional[str] = ...) -> None: ...

class RefundEvent(_message.Message):
    __slots__ = ("sequence", "refund", "previous_status", "event_time", "actor", "note")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    REFUND_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATUS_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    refund: Refund
    previous_status: RefundStatus
    event_time: _timestamp_pb2.Timestamp
    actor: str
    note: str
    def __init__(self, sequence: _Optional[int] = ..., refund: _Optional[_Union[Refund, _Mapping]] = ..., previous_status: _Optional[_Union[RefundStatus, str]] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...
