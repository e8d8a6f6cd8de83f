/**
 * The USB-Serial/JTAG peripheral of the ESP32-S3, C3, C6… as the host sees it: a CDC-ACM serial
 * port (USB 303a:1001) whose DTR and RTS are not wires to EN and GPIO0 but requests the peripheral
 * acts on itself. There is no auto-reset circuit behind it.
 *
 * The line states, as esptool's reset sequence for this peripheral relies on them (esptool v4/v5
 * esptool/reset.py `USBJTAGSerialReset`, before its move to esp_pylib; esptool-js src/reset.ts
 * `UsbJtagSerialReset` is the same sequence):
 *
 *   self._setRTS(False); self._setDTR(False)  # Idle
 *   self._setDTR(True)                        # Set IO0
 *   self._setRTS(False)
 *   self._setRTS(True)   # Reset. Calls inverted to go through (1,1) instead of (0,0)
 *   self._setDTR(False)
 *   self._setRTS(True)   # RTS set as Windows only propagates DTR on RTS setting
 *   self._setDTR(False); self._setRTS(False)  # Chip out of reset
 *
 * So DTR=1 with RTS=0 sets a "download mode" flag, DTR=0 with RTS=0 clears it (which is why the
 * sequence must not pass through (0,0) on its way to the reset), RTS=1 with DTR=0 resets the chip,
 * which boots into the ROM loader when the flag was set, and (1,1) does nothing.
 *
 * Why the classic sequence of a CP210x/CH340 board (esptool `ClassicReset`: DTR=0 RTS=1, wait,
 * DTR=1 RTS=0, wait, DTR=0) cannot enter the loader here: its first step, RTS=1 with DTR=0, resets
 * the chip while the flag is still clear, so the chip boots its application; the DTR=1 RTS=0 that
 * follows only sets the flag after the fact, and the final DTR=0 clears it again. That is why
 * esptool and esptool-js pick the USB-JTAG sequence from the port's USB ids alone
 * (`_construct_reset_strategy_sequence`: `mode == "usb-reset" or get_usb_vid_pid()[1] ==
 * USB_JTAG_SERIAL_PID`; esptool-js `constructResetSequence` / `isUsbJtagSerialPort`).
 */

/** What a change of the host's lines does to the chip. */
export type LineEffect = { reset: false } | { reset: true; download: boolean };

export class UsbSerialJtagLines {
  #downloadFlag = false;
  #resetting = false;

  /** The flag the next reset boots with. */
  get downloadFlag(): boolean {
    return this.#downloadFlag;
  }

  set(dtr: boolean, rts: boolean): LineEffect {
    if (!rts) this.#downloadFlag = dtr;
    const resetting = rts && !dtr;
    const entered = resetting && !this.#resetting;
    this.#resetting = resetting;
    return entered ? { reset: true, download: this.#downloadFlag } : { reset: false };
  }

  /** Power-on: the flag is clear and the lines idle. */
  powerOn(): void {
    this.#downloadFlag = false;
    this.#resetting = false;
  }
}
