// Loaded with NODE_OPTIONS=--import by the reproducibility tests: shifts this process's clock (Date)
// by MP_TEST_CLOCK_SHIFT_DAYS, so `mp build` runs "on another day" without faketime.
const shift = Number(process.env.MP_TEST_CLOCK_SHIFT_DAYS ?? 0) * 86_400_000;
const RealDate = Date;
class ShiftedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(RealDate.now() + shift);
    else super(...args);
  }
  static now() {
    return RealDate.now() + shift;
  }
}
globalThis.Date = ShiftedDate;
