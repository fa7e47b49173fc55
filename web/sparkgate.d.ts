// sparkgate.d.ts: TypeScript declarations of sparkgate.js (served at /sparkweb/sparkgate.js)
// and of the web components of sparkgate-elements.js. See docs/web.md.

/** Every event name the gateway sends (contract §3.5, docs/events.md). */
export declare const EVENT_NAMES: readonly string[];

export declare const b64url: {
  decode(s: string): Uint8Array;
  encode(buf: ArrayBuffer | ArrayBufferView): string;
};

/** Bare JID in lower case ("a@b/c" -> "a@b"); "" for nothing or the literal "null". */
export declare function bareJid(jid: string | null | undefined): string;
/** Resource part of a JID, "" when none. */
export declare function jidResource(jid: string | null | undefined): string;
/** The (unverified) claims of a JWT, or {}. */
export declare function tokenClaims(token: string | null | undefined): Record<string, unknown>;

/** A gateway answer with an error status. `body` is the contract's ErrorResponse when present. */
export declare class SparkgateError extends Error {
  readonly status: number;
  readonly body: ErrorResponse | null;
  readonly path: string | undefined;
  /** seconds, from Retry-After (429) */
  retryAfter: number | undefined;
}

export interface ErrorResponse { resource?: string; message?: string; exception?: string }

export type StorageOption = "session" | "local" | "memory" | Pick<Storage, "getItem" | "setItem" | "removeItem">;

export interface SparkgateOptions {
  /** Gateway origin; default: the origin this module was loaded from. */
  url?: string;
  /** Where the tokens live; default "session" (sessionStorage). */
  storage?: StorageOption;
  storageKey?: string;
  /** Web-push resource tag (W2); default "sparkgate". */
  pushName?: string;
  /** SSE tickets instead of ?token= (default true). */
  tickets?: boolean;
  /** A 404 from /sse/ticket switches to ?token= in the stream URL (default false: retried). */
  ticketFallback?: boolean;
  /** Reconnect back-off bounds in ms (default 500 .. 30000). */
  reconnect?: { min?: number; max?: number };
  /** Offer the browser's password store after a password login (default true). */
  storeCredentials?: boolean;
}

export interface TokenAnswer { token: string; refreshToken?: string; expiresIn?: number }
export interface TotpEnrolment { url: string; otpauth?: string; svg?: string }

export type StreamState = "idle" | "connecting" | "open" | "closed";
export type Show = "available" | "chat" | "away" | "xa" | "dnd";
export type ChatState = "composing" | "paused" | "active" | "inactive" | "gone";

// ---- events (contract §3.5) ----
export interface OnConnectEvent { username: string; name?: string; email?: string }
export interface OnDisconnectEvent { reason: "logout" | "session-closed" | "token-revoked" | string; undelivered?: number }
export interface XmppEvent { xmpp: string }
export interface PresenceEvent {
  type: "presence"; to: string; from: string; status: string; show: string;
  presenceType?: "available" | "unavailable" | "subscribe" | "subscribed" | "unsubscribe" | "unsubscribed" | "error" | string;
}
export interface ChatStateEvent { type: string; to: string; from: string; state: ChatState }
export interface ChatMessageEvent {
  type: "chat" | "normal" | "headline" | "error" | string; to: string; from: string;
  data: unknown; body: string;
  /** true for what this user sent (from any tab or client) */
  sent?: true; id?: string;
}
export interface MucMessageEvent { type: "groupchat"; to: string; from: string; data: unknown; body: string }
export interface InvitationEvent {
  type: "invitationReceived"; room: string; inviter: string; to: string; from: string;
  url: string; reason: string; password?: string;
}
export interface NotifyEvent { type: "notify"; to: string; from: string; data: unknown }
export interface GapEvent { oldest: number; last: number; requested: number | null }

export interface EventMap {
  onConnect: OnConnectEvent;
  onDisconnect: OnDisconnectEvent;
  "chatapi.xmpp": XmppEvent;
  "chatapi.presence": PresenceEvent;
  "chatapi.chat": ChatStateEvent | ChatMessageEvent;
  "chatapi.muc": MucMessageEvent | InvitationEvent;
  "chatapi.notify": NotifyEvent;
  "pubsub.item": unknown;
  "sparkgate.gap": GapEvent;
  "sparkgate.reconnecting": { reason: string };
  "sparkgate.reconnected": { resumed: boolean; downtime_ms: number; resent: number; queued: number };
  "sparkgate.muc": { type: "roomLost"; room: string; reason: string };
  // the client's own
  login: { username: string };
  logout: { reason: string };
  state: StreamState;
  error: Error;
}

// ---- REST shapes (contract §1.10) ----
export interface RosterItem {
  jid: string; nickname?: string; subscriptionType?: -1 | 0 | 1 | 2 | 3; groups?: string[];
  show?: Show | "unavailable"; status?: string;
}
export interface RosterEntities { rosterItem: RosterItem[] }
export interface PresenceEntity { username: string; show: string; status?: string }
export interface JidObject { node?: string; domain: string; resource?: string }
export interface ArchivedMessage {
  conversationID?: number; from: string; fromJID?: JidObject; to: string; toJID?: JidObject;
  sentDate: number; body: string; roomEvent?: boolean; stanza?: string; id?: string;
}
export interface Conversation {
  conversationID?: number; external?: boolean; startDate?: number; lastActivity?: number; messageCount?: number;
  chatRoom?: string; room?: JidObject; participantList?: string[]; participants?: JidObject[];
  conversationParticipants?: string[]; message?: ArchivedMessage[];
}
export interface Conversations { conversation: Conversation[]; first?: string; last?: string; complete?: boolean }
export interface ArchiveQuery {
  to?: string; keywords?: string; start?: string; end?: string;
  /** paging (XEP-0059): ids from a previous answer's first/last */
  before?: string; after?: string; max?: number | string;
}
export interface RoomArchiveQuery { keywords?: string; start?: string; end?: string; room?: string; service?: string }
export interface RoomQuery { serviceName?: string; expandGroups?: boolean }
export interface RoomsQuery extends RoomQuery { type?: "public" | "all"; search?: string }
export interface MUCRoomEntity {
  roomName: string; naturalName?: string; description?: string; subject?: string; password?: string;
  creationDate?: number; modificationDate?: number; maxUsers?: number;
  persistent?: boolean; publicRoom?: boolean; registrationEnabled?: boolean; canAnyoneDiscoverJID?: boolean;
  canOccupantsChangeSubject?: boolean; canOccupantsInvite?: boolean; canChangeNickname?: boolean; logEnabled?: boolean;
  loginRestrictedToNickname?: boolean; membersOnly?: boolean; moderated?: boolean; allowPM?: string;
  broadcastPresenceRoles?: string[]; owners?: string[]; admins?: string[]; members?: string[]; outcasts?: string[];
  ownerGroups?: string[]; adminGroups?: string[]; memberGroups?: string[]; outcastGroups?: string[];
}
export interface Participant { jid: string; role?: string; affiliation?: string }
export interface Occupant extends Participant { userAddress?: string }
export interface RoomHistoryMessage { to?: string; from?: string; type?: string; body?: string; delay_stamp?: string; delay_from?: string }
export interface Bookmark {
  bookmarkID?: number; type: "url" | "group_chat"; name: string; value: string; globalBookmark?: boolean;
  users?: string[]; groups?: string[]; property?: { key: string; value: string }[]; propertyNames?: string[];
}
export interface NodeEntity { id: string; name?: string; description?: string; owners?: string[] }
export interface UserEntity {
  username?: string; name?: string; email?: string; password?: string; vcard?: string;
  properties?: { key: string; value: string }[];
}
export interface NotificationEntity {
  subject?: string; body?: string; icon?: string; requireInteraction?: boolean; persistent?: boolean; sticky?: boolean;
  data?: unknown; actions?: { action: string; title: string; type?: string }[];
}
export interface Passkey { id: string; alg: number; signCount: number; created: number; lastUsed?: number }

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined | null>;
  /** a string is sent as is; anything else as JSON */
  body?: unknown;
  auth?: boolean;
  headers?: Record<string, string>;
  keepalive?: boolean;
}

export declare class Sparkgate {
  constructor(options?: SparkgateOptions);
  /** The page's one client (created on first use). Components use it. */
  static shared(options?: SparkgateOptions): Sparkgate;
  /** Replaces the page's shared client. */
  static configure(options?: SparkgateOptions): Sparkgate;

  readonly url: string;
  token: string | null;
  refreshToken: string | null;
  username: string | null;
  /** epoch ms when the access token expires (0: unknown) */
  expiresAt: number;
  /** id of the last event received (sent as lastEventId when the stream reopens) */
  lastEventId: string;
  state: StreamState;
  /** the last onConnect payload */
  profile: OnConnectEvent | null;
  readonly loggedIn: boolean;
  /** XMPP domain (the token's audience) */
  readonly domain: string;
  /** the user's bare JID */
  readonly jid: string;
  readonly canStorePasswords: boolean;

  on<K extends keyof EventMap>(name: K, handler: (data: EventMap[K], event: MessageEvent | { type: string }) => void): () => void;
  on(name: string, handler: (data: any, event: MessageEvent | { type: string }) => void): () => void;
  once<K extends keyof EventMap>(name: K): Promise<EventMap[K]>;
  once(name: string): Promise<any>;

  request<T = any>(method: string, path: string, opts?: RequestOptions): Promise<T>;

  login(username: string, password: string): Promise<TokenAnswer>;
  register(username: string, password: string): Promise<TokenAnswer>;
  loginTotp(username: string, code: string, password?: string): Promise<TokenAnswer>;
  enrolTotp(username: string, password: string): Promise<TotpEnrolment>;
  loginPasskey(username: string): Promise<TokenAnswer>;
  createPasskey(username: string, password: string): Promise<TokenAnswer>;
  passkeys(): Promise<{ credentials: Passkey[] }>;
  deletePasskey(id: string): Promise<null>;
  storePassword(username: string, password: string): Promise<boolean>;
  loginStored(mediation?: CredentialMediationRequirement): Promise<boolean>;
  refresh(): Promise<TokenAnswer>;
  logout(opts?: { keepalive?: boolean }): Promise<void>;

  connect(): void;
  disconnect(): void;

  // chat
  chatMessages(query?: ArchiveQuery): Promise<Conversations>;
  sendMessage(to: string, body: string | Record<string, unknown>): Promise<null>;
  chatState(state: ChatState, to: string): Promise<null>;
  // roster
  roster(): Promise<RosterEntities>;
  addContact(item: string | RosterItem): Promise<null>;
  updateContact(jid: string, item: Partial<RosterItem>): Promise<null>;
  removeContact(jid: string): Promise<null>;
  // presence
  presenceRoster(): Promise<RosterEntities>;
  presence(target: string): Promise<PresenceEntity>;
  setPresence(show?: Show | "offline", status?: string): Promise<null>;
  // group chat
  roomMessages(query?: RoomArchiveQuery): Promise<Conversations>;
  rooms(query?: RoomsQuery): Promise<{ chatRooms: MUCRoomEntity[] }>;
  room(name: string, query?: RoomQuery): Promise<MUCRoomEntity>;
  roomParticipants(name: string, query?: RoomQuery): Promise<{ participants: Participant[] }>;
  roomOccupants(name: string, query?: RoomQuery): Promise<{ occupants: Occupant[] }>;
  roomHistory(name: string, query?: RoomQuery): Promise<{ message: RoomHistoryMessage[] }>;
  joinRoom(name: string, query?: RoomQuery): Promise<null>;
  leaveRoom(name: string, query?: RoomQuery): Promise<null>;
  postRoom(name: string, body: string | Record<string, unknown>, query?: RoomQuery): Promise<null>;
  inviteRoom(name: string, jid: string, reason?: string, query?: RoomQuery): Promise<null>;
  // bookmarks
  createBookmark(bookmark: Bookmark): Promise<Bookmark>;
  bookmarks(): Promise<{ bookmark: Bookmark[] }>;
  bookmark(id: number | string): Promise<Bookmark>;
  updateBookmark(id: number | string, bookmark: Bookmark): Promise<Bookmark>;
  deleteBookmark(id: number | string): Promise<null>;
  setBookmarkProperty(id: number | string, name: string, value: string): Promise<Bookmark>;
  deleteBookmarkProperty(id: number | string, name: string): Promise<Bookmark>;
  // collaboration
  pubsubNodes(): Promise<{ nodes: NodeEntity[] }>;
  pubsubCreate(node: string): Promise<null>;
  pubsubSubscribe(node: string): Promise<null>;
  pubsubPublish(node: string, json: string | object): Promise<null>;
  pubsubSubscribers(node: string): Promise<{ users: UserEntity[] }>;
  pepNodes(): Promise<{ nodes: NodeEntity[] }>;
  pepPublish(node: string, json: string | object): Promise<null>;
  meeting(service: "jitsi" | "galene" | string, id: string): Promise<{ url: string }>;
  uploadSlot(fileName: string, fileSize: number): Promise<{ get: string; put: string; headers?: Record<string, string> }>;
  preview(url: string, quality?: number): Promise<{ image?: string; descriptionShort?: string; title?: string }>;
  sendXmpp(stanza: string): Promise<null>;
  // users and configuration
  users(query?: { search?: string; propertyKey?: string; propertyValue?: string }): Promise<{ users: UserEntity[] }>;
  user(): Promise<UserEntity>;
  updateUser(user: UserEntity): Promise<null>;
  deleteUser(): Promise<null>;
  userGroups(): Promise<{ groupnames: string[] }>;
  addUserGroups(groupnames: string[]): Promise<null>;
  removeUserGroups(groupnames: string[]): Promise<null>;
  addUserGroup(name: string): Promise<null>;
  removeUserGroup(name: string): Promise<null>;
  configGlobal(): Promise<{ version: string; about: string; [k: string]: unknown }>;
  configProperties(): Promise<Record<string, unknown>>;
  setConfigProperties(props: { name: string; value: string }[] | Record<string, string>): Promise<null>;
  // web push
  vapidKey(): Promise<{ publicKey: string }>;
  pushSubscribe(subscription: PushSubscriptionJSON | PushSubscription, resource?: string): Promise<null>;
  pushSubscribers(): Promise<{ users: UserEntity[] }>;
  pushSubscriptions(): Promise<{ subscriptions: { resource: string; endpoint: string }[] }>;
  pushNotify(target: string, notification: NotificationEntity): Promise<null>;
  pushMessage(target: string, text: string): Promise<null>;
  pushAction(action: { data: string; action: string; value?: string }): Promise<null>;
  enablePush(opts?: { worker?: string; scope?: string; resource?: string }): Promise<PushSubscription>;
  // tickets, liveness
  sseTicket(): Promise<{ ticket: string; expiresIn: number }>;
  isOnline(): Promise<boolean>;
}

export default Sparkgate;
