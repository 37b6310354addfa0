"""The 835 reader's header and trailer: BPR/TRN/N1 before the first claim, PLB after the last.

The loop state machine in ``reader_835`` routes these segments here; this part is cold (a few
segments per check), so it favours plain keyword construction over the hot path's shapes.
"""

from __future__ import annotations

from decimal import Decimal

from claimsync_console.domain import (
    ZERO,
    Party,
    ProviderAdjustment,
    Reference,
    RemittanceHeader,
    RemittanceTrailer,
)
from claimsync_console.x12.base import TransactionReader
from claimsync_console.x12.findings import Severity
from claimsync_console.x12.tokenizer import Segment


class RemittanceHeaderBuilder:
    """What an 835 says about the payment as a whole; ``reader`` lends its finding helpers."""

    def __init__(self, reader: TransactionReader) -> None:
        self.reader = reader
        self.values: dict[str, object] = {"payer": Party(), "payee": Party()}
        self.emitted = False
        self.n1_role = ""
        self.bpr: Segment | None = None
        self.plbs: list[ProviderAdjustment] = []

    # -- header --------------------------------------------------------------------------------

    def bpr_segment(self, segment: Segment) -> None:
        self.bpr = segment
        values = self.values
        values["handling_code"] = segment.get(1)
        values["payment_amount"] = self.reader.amount(segment, 2)
        values["credit_debit"] = segment.get(3)
        values["payment_method"] = segment.get(4)
        values["payment_format"] = segment.get(5)
        values["payment_date"] = self.reader.date(segment, 16)

    def trn(self, segment: Segment) -> None:
        values = self.values
        values["trace_type"] = segment.get(1)
        values["trace_number"] = segment.get(2)
        values["originator_id"] = segment.get(3)

    def n1(self, segment: Segment) -> None:
        role = segment.get(1)
        self.n1_role = role
        party = Party(name=segment.get(2), id_qualifier=segment.get(3), identifier=segment.get(4))
        if role == "PR":
            self.values["payer"] = party
        elif role == "PE":
            self.values["payee"] = party

    def close(self, index: int) -> RemittanceHeader:
        self.emitted = True
        values = self.values
        context = self.reader.context
        if self.bpr is None:
            self.reader.sink.add(
                Severity.FATAL, index, "BPR", "the 835 has no BPR payment segment", "missing-bpr"
            )
        payer = values["payer"]
        assert isinstance(payer, Party)
        if not (payer.identifier or payer.name):
            self.reader.sink.add(
                Severity.ERROR, index, "N1", "the 835 names no payer (N1*PR)", "missing-payer"
            )
        return RemittanceHeader(
            interchange_control_number=context.interchange_control_number,
            group_control_number=context.group_control_number,
            transaction_control_number=context.transaction_control_number,
            version=context.version,
            sender_id=context.sender_id,
            receiver_id=context.receiver_id,
            handling_code=str(values.get("handling_code", "")),
            payment_amount=values.get("payment_amount", ZERO),  # type: ignore[arg-type]
            credit_debit=str(values.get("credit_debit", "")),
            payment_method=str(values.get("payment_method", "")),
            payment_format=str(values.get("payment_format", "")),
            payment_date=values.get("payment_date"),  # type: ignore[arg-type]
            trace_type=str(values.get("trace_type", "")),
            trace_number=str(values.get("trace_number", "")),
            originator_id=str(values.get("originator_id", "")),
            payer=payer,
            payee=values["payee"],  # type: ignore[arg-type]
            production_date=values.get("production_date"),  # type: ignore[arg-type]
            segment_start=context.st_segment_index,
        )

    def party_reference(self, reference: Reference) -> None:
        """REF*2U (payer id) and REF*TJ (payee tax id) stand in when N1 carries no id."""
        role = {"PR": "payer", "PE": "payee"}.get(self.n1_role)
        if role is None or reference.qualifier not in ("2U", "TJ", "EO", "NF", "HI", "PQ"):
            return
        party = self.values[role]
        assert isinstance(party, Party)
        if not party.identifier:
            self.values[role] = Party(party.name, reference.qualifier, reference.value)

    # -- provider-level adjustments ------------------------------------------------------------

    def plb(self, segment: Segment) -> None:
        provider_id = segment.get(1)
        period = self.reader.date(segment, 2)
        elements = segment.elements
        for position in range(3, min(len(elements), 15), 2):
            composite = elements[position]
            if not composite:
                continue
            parts = composite.split(segment.delimiters.component, 1)
            self.plbs.append(
                ProviderAdjustment(
                    provider_id=provider_id,
                    fiscal_period_date=period,
                    reason_code=parts[0],
                    reference=parts[1] if len(parts) > 1 else "",
                    amount=self.reader.amount(segment, position + 1),
                    segment_index=segment.index,
                )
            )

    # -- balancing -----------------------------------------------------------------------------

    def check_balance(self, trailer: RemittanceTrailer) -> None:
        bpr = self.bpr
        if bpr is None:
            return
        payment = self.values.get("payment_amount", ZERO)
        assert isinstance(payment, Decimal)
        expected = trailer.paid_total - trailer.provider_adjustment_total
        if payment != expected:
            self.reader.sink.add(
                Severity.ERROR,
                bpr.index,
                "BPR",
                f"BPR02 {payment} ≠ Σ CLP04 {trailer.paid_total} − Σ PLB "
                f"{trailer.provider_adjustment_total} = {expected}",
                "payment-out-of-balance",
            )
