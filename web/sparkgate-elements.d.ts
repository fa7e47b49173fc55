// sparkgate-elements.d.ts: TypeScript declarations of the web components of
// sparkgate-elements.js (served at /sparkweb/sparkgate-elements.js). See docs/web.md.
import type { Sparkgate, RosterItem } from "./sparkgate.js";
export { Sparkgate } from "./sparkgate.js";

declare class SparkgateElementBase extends HTMLElement {
  /** The client used; default Sparkgate.shared(). */
  client: Sparkgate;
}
/** <sparkgate-login username heading hide-when-signed-in>; events sparkgate-login, sparkgate-error */
export declare class SparkgateLogin extends SparkgateElementBase {}
/** <sparkgate-roster selected heading confirm-remove>; event sparkgate-select {jid} */
export declare class SparkgateRoster extends SparkgateElementBase {
  selected: string;
  contacts: Map<string, RosterItem & { resources: Map<string, { show: string; status: string }> }>;
  reload(): Promise<void>;
}
/** <sparkgate-chat with page-size>; event sparkgate-message */
export declare class SparkgateChat extends SparkgateElementBase {
  with: string;
}
/** <sparkgate-rooms service heading> */
export declare class SparkgateRooms extends SparkgateElementBase {
  readonly service: string;
  /** service: the MUC service's domain or label when not the element's own. */
  join(name: string, service?: string): Promise<void>;
}

declare global {
  interface HTMLElementTagNameMap {
    "sparkgate-login": SparkgateLogin;
    "sparkgate-roster": SparkgateRoster;
    "sparkgate-chat": SparkgateChat;
    "sparkgate-rooms": SparkgateRooms;
  }
}
