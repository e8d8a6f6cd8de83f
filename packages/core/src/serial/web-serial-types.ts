/** The Web Serial API's dictionaries, as esptool-js uses them (no DOM lib in a Node project). */

/** `SerialOptions` of the Web Serial API. */
export interface WebSerialOpenOptions {
  baudRate: number;
  dataBits?: 7 | 8 | undefined;
  stopBits?: 1 | 2 | undefined;
  parity?: 'none' | 'even' | 'odd' | undefined;
  /** Size of the read buffer in bytes (Web Serial default: 255). */
  bufferSize?: number | undefined;
  flowControl?: 'none' | 'hardware' | undefined;
}

/** `SerialOutputSignals` of the Web Serial API. */
export interface WebSerialOutputSignals {
  dataTerminalReady?: boolean | undefined;
  requestToSend?: boolean | undefined;
  break?: boolean | undefined;
}

/** `SerialInputSignals` of the Web Serial API. */
export interface WebSerialInputSignals {
  dataCarrierDetect: boolean;
  clearToSend: boolean;
  ringIndicator: boolean;
  dataSetReady: boolean;
}

/** `SerialPortInfo` of the Web Serial API. */
export interface WebSerialPortInfo {
  usbVendorId?: number;
  usbProductId?: number;
}
