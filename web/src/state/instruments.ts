/** Instrument specifications parsed once from `GET /v1/instruments`. */

import { Decimal } from "../lib/decimal";
import type { InstrumentSpec } from "../lib/trading";
import type { Instrument } from "../lib/types";

export interface InstrumentView {
  readonly instrument: Instrument;
  readonly spec: InstrumentSpec;
  /** Fraction digits of the tick size, for price display. */
  readonly priceDigits: number;
}

/** Parse an instrument's decimal fields; null when the server sent something unusable. */
export function toInstrumentView(instrument: Instrument): InstrumentView | null {
  const tickSize = Decimal.tryParse(instrument.tickSize);
  const lotStep = Decimal.tryParse(instrument.lotStep);
  if (tickSize === null || lotStep === null || !tickSize.isPositive() || !lotStep.isPositive()) {
    return null;
  }
  const minQuantity = Decimal.tryParse(instrument.minQuantity) ?? lotStep;
  const maintenanceMarginRate = Decimal.tryParse(instrument.maintenanceMarginRate) ?? Decimal.zero();
  const contractSize = Decimal.tryParse(instrument.contractSize);
  const maxLeverage =
    Number.isInteger(instrument.maxLeverage) && instrument.maxLeverage >= 1
      ? instrument.maxLeverage
      : 1;
  return {
    instrument,
    spec: {
      symbol: instrument.symbol,
      tickSize,
      lotStep,
      minQuantity,
      maxLeverage,
      maintenanceMarginRate,
      // Servers from before contract sizes quote one unit a lot.
      contractSize:
        contractSize !== null && contractSize.isPositive() ? contractSize : Decimal.fromInteger(1),
    },
    priceDigits: tickSize.significantScale(),
  };
}
